/**
 * The control database: source of truth for tenants, their domains and every admin action.
 * Kept apart from the tenant schema (own drizzle config, own migrations folder: migrations-control/).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { timestamptz } from "./timestamp.ts";

export const TENANT_STATES = [
  "provisioning",
  "migrating",
  "active",
  "failed",
  "suspended",
  "deleting",
  "deleted",
] as const;
export type TenantState = (typeof TENANT_STATES)[number];

export const tenants = pgTable(
  "tenants",
  {
    id: text("id").primaryKey(),
    /** Unique forever: a deleted tenant's slug is never reused, so old tokens cannot reach a new tenant. */
    slug: text("slug").notNull().unique("tenants_slug_key"),
    status: text("status", { enum: TENANT_STATES }).notNull(),
    /** Data residency: fixed at creation. */
    region: text("region").notNull(),
    plan: text("plan").notNull().default("standard"),
    provisioner: text("provisioner", { enum: ["local", "neon", "url"] }).notNull(),
    /** Latest tenant migration applied, or null before the first. */
    schemaVersion: text("schema_version"),
    /** Onboarding step that failed (provisioning | migrating | projecting) and why. */
    failedStep: text("failed_step"),
    failureReason: text("failure_reason"),
    /** What the provisioner created (database/role, or project/branch): lets a retry resume. */
    resourceRef: jsonb("resource_ref").$type<Record<string, string>>(),
    /** App connection string, encrypted (AAD: tenant id). */
    dbSecret: text("db_secret"),
    /** Migration (DDL) connection string, encrypted (AAD: "migrate:" + tenant id). */
    migrationSecret: text("migration_secret"),
    /** Set while an onboarding run holds the tenant: a second run at once is refused until it ends or lapses. */
    /**
     * Kept in Postgres's own text (microseconds included), not `timestamptz`: a run releases the
     * lease only where it still holds the exact value it set, and milliseconds would never match.
     */
    onboardingLeaseUntil: timestamp("onboarding_lease_until", { withTimezone: true, mode: "string" }),
    /**
     * The run whose write-pausing migration is running on this tenant right now, or null. While set,
     * the KV record says `migrating` and the edge answers 503 `tenant_migrating` (fleet/pause.ts).
     */
    writesPausedBy: text("writes_paused_by"),
    createdAt: timestamptz("created_at").notNull().default(sql`now()`),
    updatedAt: timestamptz("updated_at").notNull().default(sql`now()`),
    deletedAt: timestamptz("deleted_at"),
  },
  (t) => [
    index("tenants_status_idx").on(t.status, t.id),
    index("tenants_region_idx").on(t.region, t.id),
    check(
      "tenants_status_check",
      sql`${t.status} IN ('provisioning', 'migrating', 'active', 'failed', 'suspended', 'deleting', 'deleted')`,
    ),
  ],
);

/**
 * A domain's life: `pending` until Cloudflare reports both the custom hostname and its certificate
 * active, then `active` (the only state the edge serves); `moved`, `blocked` and `deleted` are
 * Cloudflare's own verdicts; `removing` is a removal whose Cloudflare delete has not succeeded yet
 * (the cron retries it).
 */
export const DOMAIN_STATES = ["pending", "active", "moved", "blocked", "deleted", "removing"] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

/** What the customer must publish: the CNAME, the ownership and certificate TXT records, or an HTTP token. */
export interface DnsInstructions {
  records: { type: "CNAME" | "TXT"; name: string; value: string }[];
  http?: { url: string; body: string } | undefined;
}

export const domains = pgTable(
  "domains",
  {
    /** Normalised host name (src/shared/host.ts); unique across all tenants. */
    hostname: text("hostname").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    /** Rows from before custom hostnames were already served: they start active. */
    status: text("status", { enum: DOMAIN_STATES }).notNull().default("active"),
    /** Cloudflare custom hostname id; null: not a custom hostname (no Cloudflare configured, or not created yet). */
    cfId: text("cf_id"),
    /** Cloudflare's certificate status (pending_validation, active, …). */
    sslStatus: text("ssl_status"),
    /** Ownership and certificate validation errors, as Cloudflare words them. */
    validationErrors: jsonb("validation_errors").$type<string[]>(),
    dns: jsonb("dns").$type<DnsInstructions>(),
    /** The condition last alerted on (moved, blocked, deleted, validation_failed): one alert per change. */
    alerted: text("alerted"),
    checkedAt: timestamptz("checked_at"),
    createdAt: timestamptz("created_at").notNull().default(sql`now()`),
  },
  (t) => [
    index("domains_tenant_idx").on(t.tenantId),
    index("domains_poll_idx").on(t.status, t.checkedAt),
    check("domains_status_check", sql`${t.status} IN ('pending', 'active', 'moved', 'blocked', 'deleted', 'removing')`),
  ],
);

export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: timestamptz("at").notNull().default(sql`now()`),
    /** Token subject of the operator (or "system" for cron). */
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    /** Tenant slug, hostname, or "*". */
    target: text("target").notNull(),
    outcome: text("outcome", { enum: ["ok", "error"] }).notNull(),
    /** Safe details only: codes and counts, never secrets. */
    detail: jsonb("detail").$type<Record<string, unknown>>(),
    requestId: text("request_id"),
  },
  (t) => [index("audit_target_idx").on(t.target, t.id)],
);

export const RUN_STATES = ["running", "halted", "completed", "cancelled"] as const;
export type RunState = (typeof RUN_STATES)[number];
/** The partial unique index that allows one running run: its violation means "another run is running". */
export const ONE_RUNNING_RUN = "migration_runs_one_running";

/**
 * A fleet migration run: canary first, then waves, bounded concurrency, a failure threshold.
 * At most one runs at a time, kept by the database (a partial unique index), not by a read before
 * the insert: two starts at once would both see none running, and an apply and a rollback would
 * then work on the same tenants together.
 */
export const migrationRuns = pgTable(
  "migration_runs",
  {
    id: text("id").primaryKey(),
    /** apply: bring tenants up to `target`; rollback: undo the last `steps` migrations. */
    kind: text("kind", { enum: ["apply", "rollback"] }).notNull(),
    target: text("target"),
    steps: integer("steps"),
    /** Apply then roll back in the same transaction: reports per tenant, changes nothing. */
    dryRun: boolean("dry_run").notNull().default(false),
    /** rollback: undo down files that drop or truncate without taking an export first. */
    force: boolean("force").notNull().default(false),
    /** rollback: what its down files drop across the fleet's versions ("column orders.note (0002_…)"). */
    drops: jsonb("drops").$type<string[]>(),
    status: text("status", { enum: RUN_STATES }).notNull(),
    concurrency: integer("concurrency").notNull(),
    maxFailures: integer("max_failures").notNull(),
    /** Phase being worked on: 0 is the canary, 1.. the waves. */
    phase: integer("phase").notNull().default(0),
    phases: integer("phases").notNull(),
    haltReason: text("halt_reason"),
    createdBy: text("created_by").notNull(),
    createdAt: timestamptz("created_at").notNull().default(sql`now()`),
    updatedAt: timestamptz("updated_at").notNull().default(sql`now()`),
    finishedAt: timestamptz("finished_at"),
  },
  (t) => [uniqueIndex(ONE_RUNNING_RUN).on(t.status).where(sql`${t.status} = 'running'`)],
);

export const RUN_TENANT_STATES = ["pending", "queued", "running", "done", "failed", "drift", "skipped"] as const;
export type RunTenantState = (typeof RUN_TENANT_STATES)[number];

/** The central per-tenant ledger of a run: where every tenant is, how many attempts, why it failed. */
export const runTenants = pgTable(
  "run_tenants",
  {
    runId: text("run_id")
      .notNull()
      .references(() => migrationRuns.id),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    slug: text("slug").notNull(),
    phase: integer("phase").notNull(),
    status: text("status", { enum: RUN_TENANT_STATES }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    fromVersion: text("from_version"),
    toVersion: text("to_version"),
    /** What the migration did or would do (dry run): applied / rolled back names. */
    result: jsonb("result").$type<Record<string, unknown>>(),
    error: text("error"),
    queuedAt: timestamptz("queued_at"),
    startedAt: timestamptz("started_at"),
    finishedAt: timestamptz("finished_at"),
    durationMs: integer("duration_ms"),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.tenantId], name: "run_tenants_pkey" }),
    index("run_tenants_phase_idx").on(t.runId, t.phase, t.status),
  ],
);

export const EXPORT_STATES = ["pending", "running", "complete", "failed", "expired"] as const;
export type ExportState = (typeof EXPORT_STATES)[number];

/** Tenant exports: a gzip SQL dump in R2 plus a manifest written last (complete only then). */
export const exportsTable = pgTable(
  "exports",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    slug: text("slug").notNull(),
    /** pre_rollback: taken by a rollback run before down files drop or truncate anything. */
    kind: text("kind", { enum: ["on_demand", "nightly", "final", "pre_rollback"] }).notNull(),
    status: text("status", { enum: EXPORT_STATES }).notNull(),
    /** R2 key of the dump (`…/dump.sql.gz`); the manifest sits beside it. */
    objectKey: text("object_key").notNull(),
    attempts: integer("attempts").notNull().default(0),
    manifest: jsonb("manifest").$type<Record<string, unknown>>(),
    /** Gzip bytes in R2 and rows exported, once complete. */
    bytes: bigint("bytes", { mode: "number" }),
    rows: bigint("rows", { mode: "number" }),
    error: text("error"),
    createdBy: text("created_by").notNull(),
    createdAt: timestamptz("created_at").notNull().default(sql`now()`),
    startedAt: timestamptz("started_at"),
    finishedAt: timestamptz("finished_at"),
  },
  (t) => [index("exports_tenant_idx").on(t.tenantId, t.createdAt)],
);

/**
 * Jobs that touch every tenant (reconcile) run as passes paged across invocations: where the
 * current pass stands. `seq` counts committed steps; a step commits only if `seq` is still the one
 * it read, so a duplicated queue message cannot move a pass twice.
 */
export const jobCursors = pgTable("job_cursors", {
  job: text("job").primaryKey(),
  pass: text("pass").notNull(),
  seq: integer("seq").notNull().default(0),
  phase: text("phase").notNull(),
  /** Last tenant id done (tenant phases) or the KV list cursor (KV phases); null at a phase start. */
  cursor: text("cursor"),
  progress: jsonb("progress").$type<Record<string, number>>().notNull(),
  startedAt: timestamptz("started_at").notNull().default(sql`now()`),
  updatedAt: timestamptz("updated_at").notNull().default(sql`now()`),
  finishedAt: timestamptz("finished_at"),
});
