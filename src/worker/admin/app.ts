/**
 * The admin API (control plane), served only on ADMIN_HOST. Admin tokens have their own issuer and
 * audience (a tenant token is refused) and carry scopes: tenants:read, tenants:write,
 * tenants:delete, fleet:run, exports:read. Every action lands in the audit log.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, ErrorHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { finalExport, getExport, listExports, requestExport } from "../../control/export/service.ts";
import { cancelRun, fleetStatus, resumeRun, runProgress, startRun } from "../../control/fleet.ts";
import { keyStatus, reencryptSecrets } from "../../control/keys.ts";
import { auditLog, TENANT_STATES } from "../../control/schema.ts";
import {
  addDomain,
  auditEntries,
  createTenant,
  deleteTenant,
  getTenant,
  listTenants,
  reconcile,
  removeDomain,
  resumeTenant,
  retryOnboarding,
  suspendTenant,
} from "../../control/service.ts";
import { migrations } from "../../generated/migrations.ts";
import { signExportLink } from "../../shared/crypto/signed-link.ts";
import { AppError } from "../../shared/errors.ts";
import { bearerToken, verifyJwt } from "../auth/verify.ts";
import { exportDepsFrom, fleetDepsFrom } from "../fleet/handlers.ts";
import { installCommon } from "../http/common.ts";
import { configureEndpoint } from "../tenant-db/middleware.ts";
import type { AppEnv } from "../types.ts";
import { controlDepsFrom } from "./deps.ts";

export const ADMIN_SCOPES = ["tenants:read", "tenants:write", "tenants:delete", "fleet:run", "exports:read"] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

type AdminEnv = AppEnv & { Variables: AppEnv["Variables"] & { adminSub: string; adminScopes: ReadonlySet<string> } };

const adminAuth = createMiddleware<AdminEnv>(async function adminAuthMiddleware(c, next) {
  const result = await verifyJwt(
    bearerToken(c.req.header("authorization")),
    {
      issuer: c.env.ADMIN_JWT_ISSUER,
      audience: c.env.ADMIN_JWT_AUDIENCE,
      jwksUrl: c.env.ADMIN_JWKS_URL,
      secret: c.env.ADMIN_JWT_SECRET,
    },
    { issuer: c.env.ADMIN_JWT_ISSUER, audience: c.env.ADMIN_JWT_AUDIENCE, requiredClaims: ["scope"] },
  );
  if (!result.ok) {
    c.get("log").log(result.reason === "misconfigured" ? "error" : "info", "admin_token_rejected", {
      reason: result.reason,
    });
    throw new AppError(401, "unauthorized", "A valid admin token is required.", {
      headers: {
        "www-authenticate": `Bearer realm="tenantry-admin"${result.reason === "missing" ? "" : ', error="invalid_token"'}`,
      },
    });
  }
  const scope = result.payload.scope;
  c.set("adminSub", result.payload.sub as string);
  c.set("adminScopes", new Set(typeof scope === "string" ? scope.split(" ").filter(Boolean) : []));
  c.set("log", c.get("log").with({ admin: result.payload.sub as string }));
  configureEndpoint(c.env.NEON_FETCH_ENDPOINT);
  await next();
});

function requireScope(c: Context<AdminEnv>, scope: AdminScope): void {
  if (!c.get("adminScopes").has(scope)) {
    c.get("log").log("warn", "admin_scope_missing", { scope });
    throw new AppError(403, "forbidden", `This action needs the ${scope} scope.`, {
      headers: { "www-authenticate": `Bearer realm="tenantry-admin", error="insufficient_scope", scope="${scope}"` },
    });
  }
}

const deps = (c: Context<AdminEnv>) => controlDepsFrom(c.env, c.get("adminSub"), c.get("requestId"));

const Tenant = z
  .object({
    id: z.string(),
    slug: z.string(),
    status: z.enum(TENANT_STATES),
    region: z.string(),
    plan: z.string(),
    provisioner: z.string(),
    schemaVersion: z.string().nullable(),
    domains: z.array(z.string()),
    failedStep: z.string().nullable(),
    failureReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deletedAt: z.string().nullable(),
  })
  .openapi("Tenant");

const Problem = z
  .object({ type: z.string(), title: z.string(), status: z.number(), code: z.string(), detail: z.string().optional() })
  .openapi("Problem");

const SlugParam = z.object({
  slug: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "slug", in: "path" }, example: "acme" }),
});

const problems = {
  401: { description: "Missing or invalid admin token", content: { "application/problem+json": { schema: Problem } } },
  403: { description: "Missing scope", content: { "application/problem+json": { schema: Problem } } },
  404: { description: "No such tenant", content: { "application/problem+json": { schema: Problem } } },
  409: {
    description: "Conflict (slug or domain taken, wrong state)",
    content: { "application/problem+json": { schema: Problem } },
  },
  422: { description: "Validation failed", content: { "application/problem+json": { schema: Problem } } },
} as const;

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const KeyStatusSchema = z.object({
  currentKid: z.string(),
  kids: z.array(z.string()),
  secrets: z.record(z.string(), z.number()),
  stale: z.number(),
});

const routes = {
  list: createRoute({
    method: "get",
    path: "/v1/tenants",
    summary: "List tenants",
    request: {
      query: z.object({
        status: z.enum(TENANT_STATES).optional(),
        region: z.string().max(32).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: z.string().max(64).optional(),
      }),
    },
    responses: {
      200: json(z.object({ items: z.array(Tenant), next: z.string().optional() }), "A page of tenants"),
      ...problems,
    },
  }),
  create: createRoute({
    method: "post",
    path: "/v1/tenants",
    summary: "Create a tenant and onboard it (provision → migrate → active)",
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.strictObject({
              slug: z.string().min(1).max(64),
              region: z.string().min(1).max(32),
              plan: z.string().min(1).max(32).optional(),
              provisioner: z.enum(["local", "neon", "url"]).optional(),
              domains: z.array(z.string().min(1).max(300)).max(20).optional(),
              connectionString: z.string().max(2000).optional(),
              migrationConnectionString: z.string().max(2000).optional(),
            }),
          },
        },
      },
    },
    responses: { 201: json(Tenant, "The tenant, active"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/tenants/{slug}",
    summary: "Show a tenant",
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  retry: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/retry",
    summary: "Resume a failed or interrupted onboarding where it stopped",
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  suspend: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/suspend",
    summary: "Suspend a tenant (its hosts answer 403 tenant_suspended)",
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  resume: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/resume",
    summary: "Resume a suspended tenant",
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/tenants/{slug}",
    summary: "Delete a tenant for good: drops its database and role (GDPR)",
    request: {
      params: SlugParam,
      query: z.object({
        confirm: z.string().max(64).optional().openapi({ description: "must equal the slug" }),
        finalExport: z
          .enum(["true", "false"])
          .optional()
          .openapi({ description: "export the final state to R2 before dropping" }),
      }),
    },
    responses: { 200: json(Tenant, "The tenant, deleted"), ...problems },
  }),
  addDomain: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/domains",
    summary: "Map a domain to a tenant",
    request: {
      params: SlugParam,
      body: {
        required: true,
        content: { "application/json": { schema: z.strictObject({ domain: z.string().min(1).max(300) }) } },
      },
    },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  removeDomain: createRoute({
    method: "delete",
    path: "/v1/tenants/{slug}/domains/{domain}",
    summary: "Unmap a domain",
    request: {
      params: SlugParam.extend({
        domain: z
          .string()
          .min(1)
          .max(300)
          .openapi({ param: { name: "domain", in: "path" } }),
      }),
    },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  reconcile: createRoute({
    method: "post",
    path: "/v1/reconcile",
    summary: "Repair drift between the control database and KV",
    responses: {
      200: json(
        z.object({ checked: z.number(), missing: z.number(), stale: z.number(), orphan: z.number(), ok: z.number() }),
        "Counts",
      ),
      ...problems,
    },
  }),
  keys: createRoute({
    method: "get",
    path: "/v1/keys",
    summary: "Connection strings at rest per encryption key id (rotation progress)",
    responses: { 200: json(KeyStatusSchema, "Secrets per key id"), ...problems },
  }),
  reencrypt: createRoute({
    method: "post",
    path: "/v1/keys/reencrypt",
    summary: "Re-encrypt a batch of tenants' connection strings under the current key",
    request: {
      query: z.object({
        after: z.string().max(100).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(100),
      }),
    },
    responses: {
      200: json(
        KeyStatusSchema.extend({
          reencrypted: z.number(),
          failed: z.array(z.object({ slug: z.string(), secret: z.enum(["db", "migration"]), reason: z.string() })),
          changed: z.number(),
          next: z.string().nullable(),
        }),
        "What this batch did, and the counts after it",
      ),
      ...problems,
    },
  }),
  audit: createRoute({
    method: "get",
    path: "/v1/audit",
    summary: "Recent admin actions",
    request: {
      query: z.object({
        target: z.string().max(300).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(50),
      }),
    },
    responses: {
      200: json(
        z.object({
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
        }),
        "Audit entries, newest first",
      ),
      ...problems,
    },
  }),
};

const RunProgressSchema = z
  .object({
    id: z.string(),
    kind: z.enum(["apply", "rollback"]),
    target: z.string().nullable(),
    steps: z.number().nullable(),
    dryRun: z.boolean(),
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

const RunParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

const fleetRoutes = {
  status: createRoute({
    method: "get",
    path: "/v1/migrations/status",
    summary: "Fleet schema versions, tenants behind, the latest run",
    responses: {
      200: json(
        z.object({
          latest: z.string().nullable(),
          versions: z.record(z.string(), z.number()),
          behind: z.number(),
          activeTenants: z.number(),
          lastRun: RunProgressSchema.nullable(),
        }),
        "Fleet status",
      ),
      ...problems,
    },
  }),
  start: createRoute({
    method: "post",
    path: "/v1/migrations/runs",
    summary: "Start a rollout (or a rollback, or a dry run) across every active tenant",
    request: {
      body: {
        content: {
          "application/json": {
            schema: z.strictObject({
              kind: z.enum(["apply", "rollback"]).optional(),
              target: z.string().max(200).optional(),
              steps: z.number().int().min(1).max(100).optional(),
              canary: z.number().int().min(0).max(10_000).optional(),
              canaryTenants: z.array(z.string().max(64)).max(100).optional(),
              wave: z.number().int().min(1).max(100_000).optional(),
              concurrency: z.number().int().min(1).max(250).optional(),
              maxFailures: z.number().int().min(0).max(100_000).optional(),
              dryRun: z.boolean().optional(),
            }),
          },
        },
      },
    },
    responses: { 202: json(RunProgressSchema, "The run, started"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/migrations/runs/{id}",
    summary: "A run's progress",
    request: { params: RunParam },
    responses: { 200: json(RunProgressSchema, "Progress"), ...problems },
  }),
  resume: createRoute({
    method: "post",
    path: "/v1/migrations/runs/{id}/resume",
    summary: "Re-queue what is pending or failed and continue",
    request: { params: RunParam },
    responses: { 200: json(RunProgressSchema, "Progress"), ...problems },
  }),
  cancel: createRoute({
    method: "post",
    path: "/v1/migrations/runs/{id}/cancel",
    summary: "Stop a run: tenants not started are skipped",
    request: { params: RunParam },
    responses: { 200: json(RunProgressSchema, "Progress"), ...problems },
  }),
};

const ExportSchema = z
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

const ExportParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

const exportRoutes = {
  request: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/exports",
    summary: "Export a tenant's database (queued): a gzip SQL dump in R2 plus a manifest",
    request: { params: SlugParam },
    responses: { 202: json(ExportSchema, "The export, queued"), ...problems },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/tenants/{slug}/exports",
    summary: "A tenant's exports, newest first",
    request: { params: SlugParam },
    responses: { 200: json(z.object({ items: z.array(ExportSchema) }), "Exports"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/exports/{id}",
    summary: "An export's status and manifest",
    request: { params: ExportParam },
    responses: {
      200: json(ExportSchema.extend({ manifest: z.record(z.string(), z.unknown()).nullable() }), "The export"),
      ...problems,
    },
  }),
  link: createRoute({
    method: "post",
    path: "/v1/exports/{id}/link",
    summary: "A short-lived signed download URL on the tenant's own host",
    request: { params: ExportParam },
    responses: { 200: json(z.object({ url: z.string(), expiresAt: z.string() }), "The link"), ...problems },
  }),
};

export function createAdminApp() {
  const admin = new OpenAPIHono<AdminEnv>({
    // Validation failures become our problem+json, like everywhere else.
    defaultHook: (result) => {
      if (!result.success) {
        throw new AppError(422, "validation_failed", "The request has invalid fields.", {
          extras: {
            errors: result.error.issues
              .slice(0, 20)
              .map((issue) => ({ path: issue.path.join(".") || "(root)", message: issue.message })),
          },
        });
      }
    },
  });

  installCommon(admin);
  // The OpenAPI validators throw Hono's HTTPException for a body that is not JSON (400) or not
  // declared as JSON (415): answer those as problem+json with their status, not as a 500.
  const toProblem = (admin as unknown as { errorHandler: ErrorHandler<AdminEnv> }).errorHandler;
  admin.onError((error, c) =>
    toProblem(
      error instanceof HTTPException && error.status < 500
        ? new AppError(error.status, "bad_request", error.message || undefined, { cause: error })
        : error,
      c,
    ),
  );
  admin.doc("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Tenantry admin API",
      version: "1.0.0",
      description: "Control plane: tenants, domains, KV reconcile, audit.",
    },
  });
  admin.use("/v1/*", adminAuth);

  admin.openapi(routes.list, async (c) => {
    requireScope(c, "tenants:read");
    return c.json(await listTenants(deps(c), c.req.valid("query")), 200);
  });
  admin.openapi(routes.create, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await createTenant(deps(c), c.req.valid("json")), 201);
  });
  admin.openapi(routes.show, async (c) => {
    requireScope(c, "tenants:read");
    return c.json(await getTenant(deps(c), c.req.valid("param").slug), 200);
  });
  admin.openapi(routes.retry, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await retryOnboarding(deps(c), c.req.valid("param").slug), 200);
  });
  admin.openapi(routes.suspend, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await suspendTenant(deps(c), c.req.valid("param").slug), 200);
  });
  admin.openapi(routes.resume, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await resumeTenant(deps(c), c.req.valid("param").slug), 200);
  });
  admin.openapi(routes.remove, async (c) => {
    requireScope(c, "tenants:delete");
    const { slug } = c.req.valid("param");
    const { confirm, finalExport: wantExport } = c.req.valid("query");
    // The final export runs first and must succeed: the database is gone afterwards.
    if (wantExport === "true" && confirm === slug) await finalExport(exporting(c), slug);
    return c.json(await deleteTenant(deps(c), slug, confirm), 200);
  });
  admin.openapi(routes.addDomain, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await addDomain(deps(c), c.req.valid("param").slug, c.req.valid("json").domain), 200);
  });
  admin.openapi(routes.removeDomain, async (c) => {
    requireScope(c, "tenants:write");
    const { slug, domain } = c.req.valid("param");
    return c.json(await removeDomain(deps(c), slug, domain), 200);
  });
  admin.openapi(routes.reconcile, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await reconcile(deps(c)), 200);
  });
  admin.openapi(routes.keys, async (c) => {
    requireScope(c, "tenants:read");
    return c.json(await keyStatus(deps(c)), 200);
  });
  admin.openapi(routes.reencrypt, async (c) => {
    requireScope(c, "tenants:write");
    return c.json(await reencryptSecrets(deps(c), c.req.valid("query")), 200);
  });
  admin.openapi(routes.audit, async (c) => {
    requireScope(c, "tenants:read");
    const query = c.req.valid("query");
    return c.json({ items: await auditEntries(deps(c), query) }, 200);
  });
  const fleet = (c: Context<AdminEnv>) => fleetDepsFrom(c.env, c.get("adminSub"), c.get("log"));
  const exporting = (c: Context<AdminEnv>) => ({
    ...exportDepsFrom(c.env, c.get("adminSub"), c.get("log")),
    requestId: c.get("requestId"),
  });
  admin.openapi(exportRoutes.request, async (c) => {
    requireScope(c, "exports:read");
    return c.json(await requestExport(exporting(c), c.req.valid("param").slug), 202);
  });
  admin.openapi(exportRoutes.list, async (c) => {
    requireScope(c, "exports:read");
    return c.json({ items: await listExports(deps(c), c.req.valid("param").slug) }, 200);
  });
  admin.openapi(exportRoutes.show, async (c) => {
    requireScope(c, "exports:read");
    const { tenantId: _tenantId, ...view } = await getExport(deps(c), c.req.valid("param").id);
    return c.json(view, 200);
  });
  admin.openapi(exportRoutes.link, async (c) => {
    requireScope(c, "exports:read");
    const found = await getExport(deps(c), c.req.valid("param").id);
    if (found.status !== "complete") throw new AppError(409, "invalid_state", `The export is ${found.status}.`);
    if (!c.env.EXPORT_SIGNING_KEY)
      throw new AppError(503, "db_unavailable", "Export links are not configured (EXPORT_SIGNING_KEY).");
    const tenant = await getTenant(deps(c), found.tenant);
    const host = tenant.domains[0] ?? `${tenant.slug}.${c.env.PLATFORM_DOMAIN}`;
    const ttl = Math.max(30, Math.min(86_400, Number(c.env.EXPORT_LINK_TTL_SECONDS) || 900));
    const expires = Math.floor(Date.now() / 1000) + ttl;
    const signature = await signExportLink(c.env.EXPORT_SIGNING_KEY, found.tenantId, found.id, expires);
    // Same scheme and port as this admin request: right in dev (http, :8787) and behind Cloudflare (https).
    const origin = new URL(c.req.url);
    const url = `${origin.protocol}//${host}${origin.port ? `:${origin.port}` : ""}/exports/${found.id}?expires=${expires}&sig=${signature}`;
    await deps(c)
      .db.insert(auditLog)
      .values({
        actor: c.get("adminSub"),
        action: "export.link",
        target: found.tenant,
        outcome: "ok",
        detail: { exportId: found.id, expires },
        requestId: c.get("requestId"),
      });
    return c.json({ url, expiresAt: new Date(expires * 1000).toISOString() }, 200);
  });
  admin.openapi(fleetRoutes.status, async (c) => {
    requireScope(c, "tenants:read");
    return c.json(await fleetStatus(deps(c), migrations), 200);
  });
  admin.openapi(fleetRoutes.start, async (c) => {
    requireScope(c, "fleet:run");
    return c.json(await startRun(fleet(c), c.req.valid("json")), 202);
  });
  admin.openapi(fleetRoutes.show, async (c) => {
    requireScope(c, "tenants:read");
    return c.json(await runProgress(deps(c), c.req.valid("param").id), 200);
  });
  admin.openapi(fleetRoutes.resume, async (c) => {
    requireScope(c, "fleet:run");
    return c.json(await resumeRun(fleet(c), c.req.valid("param").id), 200);
  });
  admin.openapi(fleetRoutes.cancel, async (c) => {
    requireScope(c, "fleet:run");
    return c.json(await cancelRun(fleet(c), c.req.valid("param").id), 200);
  });
  return admin;
}
