/**
 * The admin API's shapes: the zod schemas its routes validate requests with and document responses
 * with. They are the wire contract (`/openapi.json` is generated from them), kept apart from the
 * routers so a contract change is reviewed as one. Named components (`.openapi("Tenant")`) appear
 * once in the document and are referenced by every route that returns them.
 */
import { z } from "@hono/zod-openapi";
import { DOMAIN_STATES, TENANT_STATES } from "../../control/schema.ts";

/** A JSON response of `schema`, for a route's `responses`. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number(),
    code: z.string(),
    detail: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: "validation_failed: the fields refused" }),
    quota: z
      .object({ allocated: z.number(), used: z.number() })
      .optional()
      .openapi({ description: "quota_exceeded: the SaaS zone's custom hostname quota" }),
  })
  .openapi("Problem");

/** The refusals every admin route may answer with (RFC 9457 problem+json). */
export const problems = {
  401: { description: "Missing or invalid admin token", content: { "application/problem+json": { schema: Problem } } },
  403: { description: "Missing scope", content: { "application/problem+json": { schema: Problem } } },
  404: { description: "No such tenant", content: { "application/problem+json": { schema: Problem } } },
  409: {
    description: "Conflict (slug or domain taken, wrong state)",
    content: { "application/problem+json": { schema: Problem } },
  },
  422: { description: "Validation failed", content: { "application/problem+json": { schema: Problem } } },
} as const;

/** The refusals of the domain routes that reach Cloudflare: a full quota, and Cloudflare failing. */
export const domainProblems = {
  ...problems,
  409: {
    description: "Domain taken (here or on the zone), or the custom hostname quota is full (quota_exceeded)",
    content: { "application/problem+json": { schema: Problem } },
  },
  502: {
    description: "Cloudflare did not answer after retries (cloudflare_unavailable) or refused (cloudflare_rejected)",
    content: { "application/problem+json": { schema: Problem } },
  },
} as const;

// Tenants and their domains.

export const Domain = z
  .object({
    hostname: z.string(),
    status: z.enum(DOMAIN_STATES),
    customHostname: z.boolean().openapi({ description: "a Cloudflare for SaaS custom hostname" }),
    sslStatus: z.string().nullable(),
    validationErrors: z.array(z.string()),
    dns: z
      .object({
        records: z.array(z.object({ type: z.enum(["CNAME", "TXT"]), name: z.string(), value: z.string() })),
        http: z.object({ url: z.string(), body: z.string() }).optional(),
      })
      .nullable()
      .openapi({ description: "what the customer must publish" }),
    checkedAt: z.string().nullable(),
  })
  .openapi("Domain");

export const DomainList = z.object({ slug: z.string(), items: z.array(Domain) });

export const Tenant = z
  .object({
    id: z.string(),
    slug: z.string(),
    status: z.enum(TENANT_STATES),
    region: z.string(),
    plan: z.string(),
    provisioner: z.string(),
    schemaVersion: z.string().nullable(),
    domains: z.array(z.string()),
    domainDetails: z.array(Domain),
    failedStep: z.string().nullable(),
    failureReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deletedAt: z.string().nullable(),
  })
  .openapi("Tenant");

export const SlugParam = z.object({
  slug: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "slug", in: "path" }, example: "acme" }),
});

export const ListTenantsQuery = z.object({
  status: z.enum(TENANT_STATES).optional(),
  region: z.string().max(32).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(64).optional(),
});

export const TenantPage = z.object({ items: z.array(Tenant), next: z.string().optional() });

export const CreateTenantBody = z.strictObject({
  slug: z.string().min(1).max(64),
  region: z.string().min(1).max(32),
  plan: z.string().min(1).max(32).optional(),
  provisioner: z.enum(["local", "neon", "url"]).optional(),
  domains: z.array(z.string().min(1).max(300)).max(20).optional(),
  connectionString: z.string().max(2000).optional(),
  migrationConnectionString: z.string().max(2000).optional(),
});

export const DeleteTenantQuery = z.object({
  confirm: z.string().max(64).optional().openapi({ description: "must equal the slug" }),
  finalExport: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "export the final state to R2 before dropping" }),
});

export const DomainBody = z.strictObject({ domain: z.string().min(1).max(300) });

export const DomainParam = SlugParam.extend({
  domain: z
    .string()
    .min(1)
    .max(300)
    .openapi({ param: { name: "domain", in: "path" } }),
});

// KV reconcile, encryption keys, audit log.

export const ReconcileReport = z.object({
  checked: z.number(),
  missing: z.number(),
  stale: z.number(),
  orphan: z.number(),
  ok: z.number(),
  pass: z.string(),
  seq: z.number(),
  phase: z.string(),
  done: z.boolean(),
  customHostnames: z
    .object({
      hostnamesWithoutDomain: z.array(z.string()),
      domainsWithoutHostname: z.array(z.string()),
      complete: z.boolean(),
    })
    .optional()
    .openapi({ description: "with Cloudflare configured: orphans on either side (reported, not repaired)" }),
});

export const KeyStatus = z.object({
  currentKid: z.string(),
  kids: z.array(z.string()),
  secrets: z.record(z.string(), z.number()),
  stale: z.number(),
  kv: z.record(z.string(), z.number()).optional(),
  kvBehind: z.number().optional(),
});

export const ReencryptQuery = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const ReencryptReport = KeyStatus.extend({
  reencrypted: z.number(),
  reprojected: z.number(),
  kvFailed: z.number(),
  failed: z.array(z.object({ slug: z.string(), secret: z.enum(["db", "migration"]), reason: z.string() })),
  changed: z.number(),
  next: z.string().nullable(),
});

export const AuditQuery = z.object({
  target: z.string().max(300).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const AuditPage = z.object({
  items: z.array(
    z.object({
      id: z.number(),
      at: z.string(),
      actor: z.string(),
      action: z.string(),
      target: z.string(),
      outcome: z.string(),
      detail: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
});

// Migration runs across the fleet.

export const RunProgress = z
  .object({
    id: z.string(),
    kind: z.enum(["apply", "rollback"]),
    target: z.string().nullable(),
    steps: z.number().nullable(),
    dryRun: z.boolean(),
    force: z.boolean().openapi({ description: "rollback: drops data without taking an export first" }),
    drops: z.array(z.string()).openapi({
      description:
        "rollback: what its down files drop or truncate, for the fleet's versions (`column orders.note (0002_order_note)`)",
    }),
    status: z.enum(["running", "halted", "completed", "cancelled"]),
    phase: z.number(),
    phases: z.number(),
    concurrency: z.number(),
    maxFailures: z.number(),
    haltReason: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    counts: z.record(z.string(), z.number()),
    total: z.number(),
    failures: z.array(
      z.object({
        slug: z.string(),
        status: z.string(),
        migration: z.string().nullable(),
        error: z.string().nullable(),
        attempts: z.number(),
      }),
    ),
  })
  .openapi("MigrationRun");

export const RunParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

export const FleetStatus = z.object({
  latest: z.string().nullable(),
  versions: z.record(z.string(), z.number()),
  behind: z.number(),
  activeTenants: z.number(),
  lastRun: RunProgress.nullable(),
});

export const StartRunBody = z.strictObject({
  kind: z.enum(["apply", "rollback"]).optional(),
  target: z.string().max(200).optional(),
  steps: z.number().int().min(1).max(100).optional(),
  canary: z.number().int().min(0).max(10_000).optional(),
  canaryTenants: z.array(z.string().max(64)).max(100).optional(),
  wave: z.number().int().min(1).max(100_000).optional(),
  concurrency: z.number().int().min(1).max(250).optional(),
  maxFailures: z.number().int().min(0).max(100_000).optional(),
  dryRun: z.boolean().optional(),
  force: z.boolean().optional().openapi({
    description:
      "rollback only: run down files that drop or truncate without an export of each tenant first (otherwise a tenant whose export fails is refused)",
  }),
});

// Exports.

export const Export = z
  .object({
    id: z.string(),
    tenant: z.string(),
    kind: z.string(),
    status: z.enum(["pending", "running", "complete", "failed", "expired"]),
    bytes: z.number().nullable(),
    rows: z.number().nullable(),
    error: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    tables: z.number().nullable(),
  })
  .openapi("Export");

export const ExportParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

export const ExportList = z.object({ items: z.array(Export) });

export const ExportDetail = Export.extend({ manifest: z.record(z.string(), z.unknown()).nullable() });

export const ExportLink = z.object({ url: z.string(), expiresAt: z.string() });
