/**
 * The fleet consumer's work for one Queue message: apply one run's change (apply, dry run or
 * rollback) to one tenant database, record the outcome in run_tenants, move the tenant's recorded
 * schema version, alert on a failure, and dispatch what comes next. Every message may arrive twice:
 * the per-tenant ledger inside the database makes a second apply a no-op, a run_tenants row already
 * done is acknowledged without work, and a delivery that found nothing to do never overwrites the
 * row another delivery finished. Throws only when the control plane itself is unreachable (the
 * message is then retried by the queue). The Worker's queue handler dispatches once per batch
 * (`dispatch: false` here) rather than once per tenant: five control-database requests fewer on
 * every tenant's path.
 */
import { type NeonQueryFunction, neon } from "@neondatabase/serverless";
import { and, eq, ne, or, sql } from "drizzle-orm";
import { decryptSecret } from "../../shared/crypto/secrets.ts";
import { describeDrop } from "../../shared/destructive-sql.ts";
import {
  dryRunMigrations,
  MigrationDriftError,
  MigrationFailedError,
  migrateDatabase,
  rollbackMigrations,
} from "../../shared/migrations.ts";
import { redactSecrets } from "../../shared/redact.ts";
import { appRoleGrants } from "../provisioners/neon/app-role.ts";
import { migrationRuns, runTenants, tenants } from "../schema.ts";
import { projectTenant } from "../tenants/projection.ts";
import { migrationAad, ring } from "../tenants/secrets.ts";
import { dispatch, type FleetDeps, type MigrateMessage } from "./dispatch.ts";
import { dropGuard } from "./drop-guard.ts";
import { pausesWrites, withWritesPaused } from "./pause.ts";

export type ApplyOutcome = "done" | "failed" | "drift" | "skipped";

type Run = typeof migrationRuns.$inferSelect;
type Tenant = typeof tenants.$inferSelect;

/** A message's run, its run_tenants row (now marked running) and tenant, and when the attempt started. */
interface Claimed {
  readonly run: Run;
  readonly row: typeof runTenants.$inferSelect;
  /** Undefined when the tenant was deleted since the run started: the attempt then fails. */
  readonly tenant: Tenant | undefined;
  readonly started: number;
}

/** What one attempt at one tenant did, before it is recorded. */
interface Attempt {
  readonly outcome: Exclude<ApplyOutcome, "skipped">;
  readonly error: string | null;
  readonly result: Record<string, unknown>;
  readonly toVersion: string | null;
  /** The migration that failed or drifted, when the database said which one. */
  readonly failedMigration: string | undefined;
}

const MAX_ERROR_LENGTH = 500;

/** Error text safe to store and show: the database's own message, with any URL redacted. */
function safeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  const message = redactSecrets(String(e?.message ?? e?.name ?? "error"));
  return `${typeof e?.code === "string" ? `${e.code}: ` : ""}${message}`.slice(0, MAX_ERROR_LENGTH);
}

/**
 * The consumer's work for one message: one tenant, one run. Returns what happened; throws only when
 * the control plane itself is unreachable (the message is then retried by the queue).
 */
export async function applyTenant(
  deps: FleetDeps,
  message: MigrateMessage,
  options: { readonly dispatch?: boolean } = {},
): Promise<ApplyOutcome> {
  const next = () => (options.dispatch === false ? Promise.resolve() : dispatch(deps).then(() => undefined));
  const claimed = await claim(deps, message);
  if (!claimed) return "skipped";
  const { run, row, tenant, started } = claimed;
  // A run touching a `pause-writes` migration makes the tenant 503 at the edge while it works.
  const attempt =
    tenant && pausesWrites(deps.tenantBundle, run, tenant.schemaVersion)
      ? await withWritesPaused(deps, tenant, run.id, () => migrate(deps, run, tenant))
      : await migrate(deps, run, tenant);
  if (!(await record(deps, message, tenant, started, attempt))) {
    await next();
    return "skipped";
  }
  if (attempt.outcome === "done" && !run.dryRun && tenant && attempt.toVersion !== tenant.schemaVersion) {
    const [updated] = await deps.db
      .update(tenants)
      .set({ schemaVersion: attempt.toVersion, updatedAt: new Date().toISOString() })
      .where(eq(tenants.id, tenant.id))
      .returning();
    if (updated) await projectTenant(deps, updated);
  }
  if (attempt.outcome !== "done") {
    const migration =
      run.kind === "apply"
        ? (attempt.failedMigration ?? run.target)
        : `rollback of ${attempt.failedMigration ?? run.steps}`;
    await deps
      .alert?.({
        event: "tenant_migration_failed",
        runId: run.id,
        tenant: row.slug,
        tenantId: row.tenantId,
        migration,
        status: attempt.outcome,
        error: attempt.error,
      })
      .catch(() => undefined);
  }
  await next();
  return attempt.outcome;
}

/**
 * Loads the run, the tenant's run_tenants row and the tenant, and marks the row running (one more
 * attempt). Undefined when there is nothing to do: a duplicate delivery, or a run stopped since.
 */
async function claim(deps: FleetDeps, message: MigrateMessage): Promise<Claimed | undefined> {
  // One request for the three reads: every round trip to the control database is on each tenant's path.
  const [[run], [row], [tenant]] = await deps.db.batch([
    deps.db.select().from(migrationRuns).where(eq(migrationRuns.id, message.runId)),
    deps.db
      .select()
      .from(runTenants)
      .where(and(eq(runTenants.runId, message.runId), eq(runTenants.tenantId, message.tenantId))),
    deps.db.select().from(tenants).where(eq(tenants.id, message.tenantId)),
  ]);
  if (!run || !row) return undefined;
  // A duplicate delivery, or a run stopped since: nothing to do.
  if (row.status === "done" || row.status === "skipped") return undefined;
  if (run.status !== "running") return undefined;
  const started = Date.now();
  const claimed = await deps.db
    .update(runTenants)
    .set({
      status: "running",
      attempts: sql`${runTenants.attempts} + 1`,
      startedAt: new Date(started).toISOString(),
      error: null,
    })
    .where(
      and(
        eq(runTenants.runId, message.runId),
        eq(runTenants.tenantId, message.tenantId),
        or(eq(runTenants.status, "queued"), eq(runTenants.status, "pending"), eq(runTenants.status, "running")),
      ),
    )
    .returning({ attempts: runTenants.attempts });
  return claimed.length === 0 ? undefined : { run, row, tenant, started };
}

/**
 * A Neon tenant's app role gets DML rights only and leaves `neon_superuser`, every apply run: tenants
 * provisioned before the app role was made with SQL (neon/app-role.ts) had it made through the Neon
 * API, a `neon_superuser` member. Run by the fleet rather than as a tenant migration: the role's
 * name is in the control plane (resource_ref), not in the tenant database, and a run gives canary,
 * waves and per-tenant failures for free. Idempotent: the grants repeat, the revoke is guarded.
 */
async function leastPrivilegeAppRole(db: NeonQueryFunction<false, false>, tenant: Tenant): Promise<void> {
  const appRole = tenant.resourceRef?.appRole;
  if (tenant.provisioner !== "neon" || !appRole) return;
  await db.transaction(appRoleGrants(appRole).map((statement) => db.query(statement)));
}

/** Applies (or dry-runs, or rolls back) the run's change on the tenant's database. Never throws. */
async function migrate(deps: FleetDeps, run: Run, tenant: Tenant | undefined): Promise<Attempt> {
  let result: Record<string, unknown> = {};
  try {
    if (tenant?.status !== "active" || !tenant.migrationSecret)
      throw new Error(`tenant is ${tenant?.status ?? "gone"}`);
    const decrypted = await decryptSecret(ring(deps.encryptionKeys), tenant.migrationSecret, migrationAad(tenant.id));
    if (!decrypted.ok) throw new Error("the tenant's migration connection could not be decrypted");
    const db = neon(decrypted.plaintext);
    let toVersion: string | null;
    if (run.kind === "rollback") {
      // From the version the control plane recorded, not the ledger's latest: a duplicate delivery
      // racing this one then undoes the same migrations, never the ones below them.
      // Down files that drop or truncate run only after an export of the tenant (or with force).
      const guard = dropGuard(tenant, { force: run.force, exportBeforeDrop: deps.exportBeforeDrop });
      const rolled = await rollbackMigrations(db, deps.tenantBundle, {
        steps: run.steps ?? 1,
        from: tenant.schemaVersion,
        dryRun: run.dryRun,
        lock: deps.migrationLocks,
        beforeDrop: guard.beforeDrop,
      });
      const exportId = guard.exportId();
      result = {
        rolledBack: rolled.rolledBack,
        dryRun: run.dryRun,
        drops: rolled.drops.map(describeDrop),
        ...(exportId ? { exportId } : {}),
      };
      toVersion = rolled.version;
    } else {
      const target = run.target ?? undefined;
      const options = { lock: deps.migrationLocks };
      const applied = run.dryRun
        ? await dryRunMigrations(db, deps.tenantBundle, target, options)
        : await migrateDatabase(db, deps.tenantBundle, target, options);
      result = { applied: applied.applied, dryRun: run.dryRun };
      toVersion = applied.version;
      if (!run.dryRun) await leastPrivilegeAppRole(db, tenant);
    }
    return { outcome: "done", error: null, result, toVersion, failedMigration: undefined };
  } catch (caught) {
    // The migration that failed or drifted, when the database said which one.
    const failedMigration =
      caught instanceof MigrationDriftError || caught instanceof MigrationFailedError ? caught.migration : undefined;
    return {
      outcome: caught instanceof MigrationDriftError ? "drift" : "failed",
      error: safeError(caught),
      result: failedMigration === undefined ? result : { ...result, migration: failedMigration },
      toVersion: null,
      failedMigration,
    };
  }
}

/**
 * Writes the attempt to the tenant's run_tenants row; false when another delivery had already
 * finished the row and this one must not overwrite it.
 */
async function record(
  deps: FleetDeps,
  message: MigrateMessage,
  tenant: Tenant | undefined,
  started: number,
  attempt: Attempt,
): Promise<boolean> {
  const { outcome, result } = attempt;
  // Two deliveries of one message may both get here. The one that did the work records it; one
  // that found nothing left to do, or failed, never overwrites a tenant another delivery finished.
  const changes = [result.applied, result.rolledBack].some((names) => Array.isArray(names) && names.length > 0);
  const recorded = await deps.db
    .update(runTenants)
    .set({
      status: outcome,
      error: attempt.error,
      result,
      fromVersion: tenant?.schemaVersion ?? null,
      toVersion: outcome === "done" ? attempt.toVersion : null,
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
    })
    .where(
      and(
        eq(runTenants.runId, message.runId),
        eq(runTenants.tenantId, message.tenantId),
        outcome === "done" && changes ? undefined : ne(runTenants.status, "done"),
      ),
    )
    .returning({ tenantId: runTenants.tenantId });
  return recorded.length > 0;
}
