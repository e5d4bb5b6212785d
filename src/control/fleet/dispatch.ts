/**
 * Fleet dispatch: finds the work of running migration runs and queues it, one Queue message per
 * tenant; it never does the work itself (a cron invocation has a 6-connection and CPU budget). It
 * runs from the cron, after a run starts or resumes, and after every tenant the consumer finishes.
 * Per run it asks `dispatchStep` (plan.ts) what comes next: halt (one halt, one alert), move to
 * the next phase, complete, or pick the next pending tenants of the current phase up to the run's
 * concurrency and re-send messages that were queued long ago and never started. Safe to call
 * concurrently and repeatedly: rows move pending → queued with a guarded UPDATE under a per-run
 * advisory lock, so a tenant is queued once per attempt.
 */
import { and, count, eq, inArray, isNotNull, lt, sql } from "drizzle-orm";
import type { LockPolicy } from "../../shared/migration-locks.ts";
import { migrationRuns, type RunTenantState, runTenants } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import type { ExportBeforeDrop } from "./drop-guard.ts";
import { dispatchStep } from "./plan.ts";

/** One tenant's work in one run: the Queue message body. */
export interface MigrateMessage {
  readonly kind: "migrate";
  readonly runId: string;
  readonly tenantId: string;
}

export interface FleetDeps extends ControlDeps {
  /** Sends messages to the fleet queue (`env.FLEET_QUEUE.sendBatch`). */
  readonly send: (messages: readonly MigrateMessage[]) => Promise<void>;
  /** POSTs an alert as JSON (ALERT_WEBHOOK_URL); absent: alerts are only logged. */
  readonly alert?: ((payload: Record<string, unknown>) => Promise<void>) | undefined;
  /** Lock and statement timeouts and lock retries of each tenant migration (MIGRATION_* vars). */
  readonly migrationLocks?: Partial<LockPolicy> | undefined;
  /** Takes an export before a rollback drops data (drop-guard.ts); absent, such a rollback is refused unless forced. */
  readonly exportBeforeDrop?: ExportBeforeDrop | undefined;
}

/** A queued message not started within this long is sent again (lost or dead-lettered). */
const REQUEUE_AFTER_MS = 10 * 60_000;

/** Updates a run's row (and its updatedAt). */
export async function setRun(
  deps: ControlDeps,
  runId: string,
  values: Partial<typeof migrationRuns.$inferInsert>,
): Promise<void> {
  await deps.db
    .update(migrationRuns)
    .set({ ...values, updatedAt: new Date().toISOString() })
    .where(eq(migrationRuns.id, runId));
}

/** Takes every running run one step further (see the header); returns how many messages it sent. */
export async function dispatch(deps: FleetDeps): Promise<{ queued: number }> {
  const runs = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"));
  let queued = 0;
  for (const run of runs) {
    // The phase's counts and the run's failures in one request.
    const [phaseRows, [failed]] = await deps.db.batch([
      deps.db
        .select({ status: runTenants.status, n: count() })
        .from(runTenants)
        .where(and(eq(runTenants.runId, run.id), eq(runTenants.phase, run.phase)))
        .groupBy(runTenants.status),
      failures(deps, run.id),
    ]);
    const n = (status: RunTenantState) => Number(phaseRows.find((row) => row.status === status)?.n ?? 0);
    const step = dispatchStep(run, n, Number(failed?.n ?? 0));
    if (step.kind === "halt") {
      await halt(deps, run.id, step.reason);
    } else if (step.kind === "advance") {
      await setRun(deps, run.id, { phase: run.phase + 1 });
      const next = await dispatch(deps);
      queued += next.queued;
    } else if (step.kind === "complete") {
      await setRun(deps, run.id, { status: "completed", finishedAt: new Date().toISOString() });
    } else {
      queued += await queue(deps, run, step.free);
    }
  }
  return { queued };
}

/**
 * Sends the messages of one run: up to `free` newly picked tenants, plus a second message for each
 * tenant queued long ago that never started (lost or dead-lettered). Returns how many were sent.
 */
async function queue(deps: FleetDeps, run: typeof migrationRuns.$inferSelect, free: number): Promise<number> {
  const stale = new Date(Date.now() - REQUEUE_AFTER_MS).toISOString();
  // The pick is the last request before the send: a failure between them would leave the picked
  // tenants queued with no message until they go stale (10 minutes, then a dispatch re-sends them).
  const resend = await deps.db
    .update(runTenants)
    .set({ queuedAt: new Date().toISOString() })
    .where(
      and(
        eq(runTenants.runId, run.id),
        eq(runTenants.status, "queued"),
        isNotNull(runTenants.queuedAt),
        lt(runTenants.queuedAt, stale),
      ),
    )
    .returning({ tenantId: runTenants.tenantId });
  const picked = free ? await pick(deps, run) : [];
  const messages = [...picked, ...resend].map((row) => ({
    kind: "migrate" as const,
    runId: run.id,
    tenantId: row.tenantId,
  }));
  // sendBatch takes at most 100 messages.
  for (let start = 0; start < messages.length; start += 100) await deps.send(messages.slice(start, start + 100));
  return messages.length;
}

/**
 * Queues the next pending tenants of the run's current phase, at most `concurrency` in flight. The
 * count of tenants in flight and the pick are one statement, in one transaction that first takes a
 * per-run advisory lock: dispatches running at once (one per finishing consumer, plus the cron)
 * take turns, and each one counts what the others queued, so together they never overshoot.
 */
async function pick(deps: FleetDeps, run: typeof migrationRuns.$inferSelect): Promise<{ tenantId: string }[]> {
  const ofPhase = sql`${runTenants.runId} = ${run.id} AND ${runTenants.phase} = ${run.phase}`;
  const next = sql`SELECT ${runTenants.tenantId} FROM ${runTenants}
    WHERE ${ofPhase} AND ${runTenants.status} = 'pending'
    ORDER BY ${runTenants.tenantId}
    LIMIT greatest(0, ${run.concurrency}::int - (
      SELECT count(*)::int FROM ${runTenants} WHERE ${ofPhase} AND ${runTenants.status} IN ('queued', 'running')))`;
  const [, picked] = await deps.db.batch([
    deps.db
      .select({ locked: sql`pg_advisory_xact_lock(hashtextextended(${`tenantry:dispatch:${run.id}`}, 0))` })
      .from(migrationRuns)
      .where(eq(migrationRuns.id, run.id)),
    deps.db
      .update(runTenants)
      .set({ status: "queued", queuedAt: new Date().toISOString() })
      .where(
        and(eq(runTenants.runId, run.id), eq(runTenants.status, "pending"), sql`${runTenants.tenantId} IN (${next})`),
      )
      .returning({ tenantId: runTenants.tenantId }),
  ]);
  return picked;
}

/** The query counting failed or drifted tenants of the whole run, every phase. */
function failures(deps: ControlDeps, runId: string) {
  return deps.db
    .select({ n: count() })
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["failed", "drift"])));
}

async function halt(deps: FleetDeps, runId: string, reason: string): Promise<void> {
  // Only a running run halts, and only once: concurrent dispatches (one per finishing consumer)
  // reach the same decision, and a run cancelled meanwhile stays cancelled. One halt, one alert.
  const halted = await deps.db
    .update(migrationRuns)
    .set({ status: "halted", haltReason: reason, updatedAt: new Date().toISOString() })
    .where(and(eq(migrationRuns.id, runId), eq(migrationRuns.status, "running")))
    .returning({ id: migrationRuns.id });
  if (halted.length === 0) return;
  await deps.alert?.({ event: "fleet_run_halted", runId, reason }).catch(() => undefined);
}
