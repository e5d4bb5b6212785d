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

export const domains = pgTable(
  "domains",
  {
    /** Normalised host name (src/shared/host.ts); unique across all tenants. */
    hostname: text("hostname").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    createdAt: timestamptz("created_at").notNull().default(sql`now()`),
  },
  (t) => [index("domains_tenant_idx").on(t.tenantId)],
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
    kind: text("kind", { enum: ["on_demand", "nightly", "final"] }).notNull(),
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
