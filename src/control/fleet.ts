/**
 * Fleet migrations: roll a schema change out to every tenant database.
 *
 * A run snapshots the active tenants into a central ledger (run_tenants), split into a canary phase
 * and waves. `dispatch` (cron, and after every finished tenant) queues at most `concurrency`
 * tenants of the current phase as Queue messages; the consumer applies one tenant per message
 * (`applyTenant`) and records status, attempts, error and timing. A failed tenant does not stop the
 * others; failures past `maxFailures` halt the run, and a failing canary halts it before any wave.
 * A run completes only with every tenant done: one whose last wave leaves failures is halted too.
 * `resume` re-queues what is pending or failed, `cancel` skips what has not started. Every message
 * may arrive twice: the per-tenant ledger inside the database makes a second apply a no-op, and a
 * run_tenants row already done is acknowledged without work.
 */
import { neon } from "@neondatabase/serverless";
import { and, asc, count, desc, eq, inArray, isNotNull, lt, min, ne, or, sql } from "drizzle-orm";
import { decryptSecret } from "../shared/crypto/secrets.ts";
import { AppError } from "../shared/errors.ts";
import {
  dryRunMigrations,
  type MigrationBundle,
  MigrationDriftError,
  MigrationFailedError,
  migrateDatabase,
  rollbackMigrations,
} from "../shared/migrations.ts";
import { auditLog, migrationRuns, type RunState, type RunTenantState, runTenants, tenants } from "./schema.ts";
import type { ControlDeps } from "./tenants/deps.ts";
import { projectTenant } from "./tenants/projection.ts";
import { migrationAad, ring } from "./tenants/secrets.ts";

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
}

export interface RunOptions {
  readonly kind?: "apply" | "rollback";
  /** apply: the migration to end at (default: the bundle's latest). */
  readonly target?: string | undefined;
  /** rollback: how many of the latest migrations to undo. */
  readonly steps?: number | undefined;
  /** First N tenants (by id) form the canary; or name them with `canaryTenants`. */
  readonly canary?: number | undefined;
  readonly canaryTenants?: readonly string[] | undefined;
  /** Tenants per wave after the canary (default: all the rest in one wave). */
  readonly wave?: number | undefined;
  readonly concurrency?: number | undefined;
  readonly maxFailures?: number | undefined;
  readonly dryRun?: boolean | undefined;
}

export interface RunProgress {
  readonly id: string;
  readonly kind: "apply" | "rollback";
  readonly target: string | null;
  readonly steps: number | null;
  readonly dryRun: boolean;
  readonly status: RunState;
  readonly phase: number;
  readonly phases: number;
  readonly concurrency: number;
  readonly maxFailures: number;
  readonly haltReason: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly counts: Record<RunTenantState, number>;
  readonly total: number;
  readonly failures: {
    slug: string;
    status: string;
    /** The migration that failed or drifted, when the database said which one. */
    migration: string | null;
    error: string | null;
    attempts: number;
  }[];
}

/** A queued message not started within this long is sent again (lost or dead-lettered). */
const REQUEUE_AFTER_MS = 10 * 60_000;
const MAX_ERROR_LENGTH = 500;

const newRunId = () =>
  `run_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;

/** Error text safe to store and show: the database's own message, with any URL redacted. */
function safeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  const message = String(e?.message ?? e?.name ?? "error").replace(/postgres(ql)?:\/\/\S+/gi, "[redacted]");
  return `${typeof e?.code === "string" ? `${e.code}: ` : ""}${message}`.slice(0, MAX_ERROR_LENGTH);
}

/** Splits tenant ids into phases: canary (phase 0) then waves. Pure. */
export function planPhases(
  tenantIds: readonly { id: string; slug: string }[],
  options: { canary: number; canaryTenants?: readonly string[] | undefined; wave?: number | undefined },
): { id: string; slug: string; phase: number }[] {
  const named = new Set(options.canaryTenants ?? []);
  const canary = named.size
    ? tenantIds.filter((t) => named.has(t.slug) || named.has(t.id))
    : tenantIds.slice(0, Math.max(0, options.canary));
  const canaryIds = new Set(canary.map((t) => t.id));
  const rest = tenantIds.filter((t) => !canaryIds.has(t.id));
  const waveSize = options.wave && options.wave > 0 ? options.wave : Math.max(1, rest.length);
  const firstWave = canary.length > 0 ? 1 : 0;
  return [
    ...canary.map((t) => ({ ...t, phase: 0 })),
    ...rest.map((t, index) => ({ ...t, phase: firstWave + Math.floor(index / waveSize) })),
  ];
}

export async function startRun(deps: FleetDeps, options: RunOptions): Promise<RunProgress> {
  const kind = options.kind ?? "apply";
  const target = kind === "apply" ? (options.target ?? deps.tenantBundle.at(-1)?.name ?? null) : null;
  if (kind === "apply" && target && !deps.tenantBundle.some((m) => m.name === target)) {
    throw new AppError(422, "validation_failed", "Unknown target migration.", {
      extras: { errors: [{ path: "target", message: "not in the bundle" }] },
    });
  }
  if (kind === "rollback" && !(options.steps && options.steps > 0)) {
    throw new AppError(422, "validation_failed", "A rollback needs steps ≥ 1.", {
      extras: { errors: [{ path: "steps", message: "must be ≥ 1" }] },
    });
  }
  const running = await deps.db
    .select({ id: migrationRuns.id })
    .from(migrationRuns)
    .where(eq(migrationRuns.status, "running"));
  if (running.length > 0)
    throw new AppError(409, "conflict", `Run ${running[0]?.id} is still running: cancel or finish it first.`);
  const active = await deps.db
    .select({ id: tenants.id, slug: tenants.slug })
    .from(tenants)
    .where(eq(tenants.status, "active"))
    .orderBy(asc(tenants.id));
  // A misspelt canary would silently shrink the canary, or drop it and send every tenant at once.
  const unknown = (options.canaryTenants ?? []).filter((name) => !active.some((t) => t.slug === name || t.id === name));
  if (unknown.length > 0) {
    throw new AppError(422, "validation_failed", "A canary tenant is not an active tenant.", {
      extras: { errors: unknown.map((name) => ({ path: "canaryTenants", message: `${name} is not active` })) },
    });
  }
  const planned = planPhases(active, {
    canary: options.canary ?? 0,
    canaryTenants: options.canaryTenants,
    wave: options.wave,
  });
  const phases = planned.reduce((max, t) => Math.max(max, t.phase + 1), 0);
  const id = newRunId();
  await deps.db.insert(migrationRuns).values({
    id,
    kind,
    target,
    steps: kind === "rollback" ? (options.steps ?? null) : null,
    dryRun: options.dryRun ?? false,
    status: planned.length === 0 ? "completed" : "running",
    concurrency: Math.max(1, Math.min(250, options.concurrency ?? 10)),
    maxFailures: Math.max(0, options.maxFailures ?? 10),
    phases,
    createdBy: deps.actor,
    ...(planned.length === 0 ? { finishedAt: new Date().toISOString() } : {}),
  });
  // Inserted in pages: one statement per 500 tenants keeps each request small.
  for (let start = 0; start < planned.length; start += 500) {
    await deps.db
      .insert(runTenants)
      .values(
        planned.slice(start, start + 500).map((t) => ({ runId: id, tenantId: t.id, slug: t.slug, phase: t.phase })),
      );
  }
  await deps.db.insert(auditLog).values({
    actor: deps.actor,
    action: options.dryRun ? `fleet.${kind}.dry_run` : `fleet.${kind}`,
    target: "*",
    outcome: "ok",
    detail: { runId: id, tenants: planned.length, target, steps: options.steps ?? null },
    requestId: deps.requestId ?? null,
  });
  await dispatch(deps);
  return runProgress(deps, id);
}

export async function runProgress(deps: ControlDeps, runId: string): Promise<RunProgress> {
  const [run] = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.id, runId));
  if (!run) throw new AppError(404, "not_found", "No such run.");
  const grouped = await deps.db
    .select({ status: runTenants.status, n: count() })
    .from(runTenants)
    .where(eq(runTenants.runId, runId))
    .groupBy(runTenants.status);
  const counts = { pending: 0, queued: 0, running: 0, done: 0, failed: 0, drift: 0, skipped: 0 } as Record<
    RunTenantState,
    number
  >;
  for (const row of grouped) counts[row.status] = Number(row.n);
  const failures = await deps.db
    .select({
      slug: runTenants.slug,
      status: runTenants.status,
      migration: sql<string | null>`${runTenants.result}->>'migration'`,
      error: runTenants.error,
      attempts: runTenants.attempts,
    })
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["failed", "drift"])))
    .orderBy(asc(runTenants.slug))
    .limit(100);
  return {
    id: run.id,
    kind: run.kind,
    target: run.target,
    steps: run.steps,
    dryRun: run.dryRun,
    status: run.status,
    phase: run.phase,
    phases: run.phases,
    concurrency: run.concurrency,
    maxFailures: run.maxFailures,
    haltReason: run.haltReason,
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    failures,
  };
}

export async function latestRun(deps: ControlDeps): Promise<RunProgress | undefined> {
  const [run] = await deps.db
    .select({ id: migrationRuns.id })
    .from(migrationRuns)
    .orderBy(desc(migrationRuns.createdAt))
    .limit(1);
  return run ? runProgress(deps, run.id) : undefined;
}

async function setRun(
  deps: ControlDeps,
  runId: string,
  values: Partial<typeof migrationRuns.$inferInsert>,
): Promise<void> {
  await deps.db
    .update(migrationRuns)
    .set({ ...values, updatedAt: new Date().toISOString() })
    .where(eq(migrationRuns.id, runId));
}

/**
 * Finds work and queues it; never does the work itself (a cron invocation has a 6-connection and
 * CPU budget). Safe to call concurrently and repeatedly: rows move pending → queued with a guarded
 * UPDATE, so a tenant is queued once per attempt.
 */
export async function dispatch(deps: FleetDeps): Promise<{ queued: number }> {
  const runs = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"));
  let queued = 0;
  for (const run of runs) {
    const phaseRows = await deps.db
      .select({ status: runTenants.status, n: count() })
      .from(runTenants)
      .where(and(eq(runTenants.runId, run.id), eq(runTenants.phase, run.phase)))
      .groupBy(runTenants.status);
    const n = (status: RunTenantState) => Number(phaseRows.find((row) => row.status === status)?.n ?? 0);
    const failedTotal = await failures(deps, run.id);
    if (failedTotal > run.maxFailures) {
      await halt(deps, run.id, `${failedTotal} tenants failed (threshold ${run.maxFailures})`);
      continue;
    }
    const inFlight = n("queued") + n("running");
    if (n("pending") === 0 && inFlight === 0) {
      if (run.phase === 0 && run.phases > 1 && n("failed") + n("drift") > 0) {
        await halt(deps, run.id, "the canary failed: no wave was started");
        continue;
      }
      if (run.phase + 1 < run.phases) {
        await setRun(deps, run.id, { phase: run.phase + 1 });
        const next = await dispatch(deps);
        queued += next.queued;
      } else if (failedTotal > 0) {
        // Complete means every tenant done: a failed or drifted one waits for a fix and a resume.
        await halt(deps, run.id, `${failedTotal} tenant(s) failed or drifted: fix them, then resume`);
      } else {
        await setRun(deps, run.id, { status: "completed", finishedAt: new Date().toISOString() });
      }
      continue;
    }
    // Re-send messages that were queued long ago and never started (lost or dead-lettered).
    const stale = new Date(Date.now() - REQUEUE_AFTER_MS).toISOString();
    const free = Math.max(0, run.concurrency - inFlight);
    const picked = free ? await pick(deps, run) : [];
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
    const messages = [...picked, ...resend].map((row) => ({
      kind: "migrate" as const,
      runId: run.id,
      tenantId: row.tenantId,
    }));
    // sendBatch takes at most 100 messages.
    for (let start = 0; start < messages.length; start += 100) await deps.send(messages.slice(start, start + 100));
    queued += messages.length;
  }
  return { queued };
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

async function failures(deps: ControlDeps, runId: string): Promise<number> {
  const [row] = await deps.db
    .select({ n: count() })
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["failed", "drift"])));
  return Number(row?.n ?? 0);
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

export type ApplyOutcome = "done" | "failed" | "drift" | "skipped";

/**
 * The consumer's work for one message: one tenant, one run. Returns what happened; throws only when
 * the control plane itself is unreachable (the message is then retried by the queue).
 */
export async function applyTenant(deps: FleetDeps, message: MigrateMessage): Promise<ApplyOutcome> {
  const [run] = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.id, message.runId));
  const [row] = await deps.db
    .select()
    .from(runTenants)
    .where(and(eq(runTenants.runId, message.runId), eq(runTenants.tenantId, message.tenantId)));
  if (!run || !row) return "skipped";
  // A duplicate delivery, or a run stopped since: nothing to do.
  if (row.status === "done" || row.status === "skipped") return "skipped";
  if (run.status !== "running") return "skipped";
  const [tenant] = await deps.db.select().from(tenants).where(eq(tenants.id, message.tenantId));
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
  if (claimed.length === 0) return "skipped";

  let outcome: ApplyOutcome;
  let error: string | null = null;
  let result: Record<string, unknown> = {};
  let toVersion: string | null = null;
  let failedMigration: string | undefined;
  try {
    if (tenant?.status !== "active" || !tenant.migrationSecret)
      throw new Error(`tenant is ${tenant?.status ?? "gone"}`);
    const decrypted = await decryptSecret(ring(deps.encryptionKeys), tenant.migrationSecret, migrationAad(tenant.id));
    if (!decrypted.ok) throw new Error("the tenant's migration connection could not be decrypted");
    const db = neon(decrypted.plaintext);
    if (run.kind === "rollback") {
      // From the version the control plane recorded, not the ledger's latest: a duplicate delivery
      // racing this one then undoes the same migrations, never the ones below them.
      const rolled = await rollbackMigrations(db, deps.tenantBundle, {
        steps: run.steps ?? 1,
        from: tenant.schemaVersion,
        dryRun: run.dryRun,
      });
      result = { rolledBack: rolled.rolledBack, dryRun: run.dryRun };
      toVersion = rolled.version;
    } else {
      const target = run.target ?? undefined;
      const applied = run.dryRun
        ? await dryRunMigrations(db, deps.tenantBundle, target)
        : await migrateDatabase(db, deps.tenantBundle, target);
      result = { applied: applied.applied, dryRun: run.dryRun };
      toVersion = applied.version;
    }
    outcome = "done";
  } catch (caught) {
    outcome = caught instanceof MigrationDriftError ? "drift" : "failed";
    error = safeError(caught);
    // The migration that failed or drifted, when the database said which one.
    if (caught instanceof MigrationDriftError || caught instanceof MigrationFailedError) {
      failedMigration = caught.migration;
      result = { ...result, migration: caught.migration };
    }
  }
  // Two deliveries of one message may both get here. The one that did the work records it; one
  // that found nothing left to do, or failed, never overwrites a tenant another delivery finished.
  const changes = [result.applied, result.rolledBack].some((names) => Array.isArray(names) && names.length > 0);
  const recorded = await deps.db
    .update(runTenants)
    .set({
      status: outcome,
      error,
      result,
      fromVersion: tenant?.schemaVersion ?? null,
      toVersion: outcome === "done" ? toVersion : null,
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
  if (recorded.length === 0) {
    await dispatch(deps);
    return "skipped";
  }
  if (outcome === "done" && !run.dryRun && tenant && toVersion !== tenant.schemaVersion) {
    const [updated] = await deps.db
      .update(tenants)
      .set({ schemaVersion: toVersion, updatedAt: new Date().toISOString() })
      .where(eq(tenants.id, tenant.id))
      .returning();
    if (updated) await projectTenant(deps, updated);
  }
  if (outcome !== "done") {
    const migration =
      run.kind === "apply" ? (failedMigration ?? run.target) : `rollback of ${failedMigration ?? run.steps}`;
    await deps
      .alert?.({
        event: "tenant_migration_failed",
        runId: run.id,
        tenant: row.slug,
        tenantId: row.tenantId,
        migration,
        status: outcome,
        error,
      })
      .catch(() => undefined);
  }
  await dispatch(deps);
  return outcome;
}

export async function resumeRun(deps: FleetDeps, runId: string): Promise<RunProgress> {
  const [run] = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.id, runId));
  if (!run) throw new AppError(404, "not_found", "No such run.");
  if (run.status === "completed" || run.status === "cancelled") {
    throw new AppError(409, "invalid_state", `A ${run.status} run cannot be resumed; start a new one.`);
  }
  const others = await deps.db
    .select({ id: migrationRuns.id })
    .from(migrationRuns)
    .where(and(eq(migrationRuns.status, "running"), sql`${migrationRuns.id} <> ${runId}`));
  if (others.length > 0) throw new AppError(409, "conflict", `Run ${others[0]?.id} is running.`);
  // Failed and drifted tenants go back to pending (drift stays drift unless fixed by hand: retried, it fails again).
  await deps.db
    .update(runTenants)
    .set({ status: "pending", queuedAt: null })
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["failed", "drift", "queued"])));
  // Dispatch only looks at the current phase: go back to the earliest one with work again
  // (a tenant that failed in an earlier wave), and move forward from there.
  const [earliest] = await deps.db
    .select({ phase: min(runTenants.phase) })
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), eq(runTenants.status, "pending")));
  const phase = Math.min(run.phase, earliest?.phase ?? run.phase);
  // The failure that halted it is cleared: the threshold counts from here.
  await setRun(deps, runId, { status: "running", phase, haltReason: null, finishedAt: null });
  await dispatch(deps);
  return runProgress(deps, runId);
}

export async function cancelRun(deps: FleetDeps, runId: string): Promise<RunProgress> {
  const [run] = await deps.db.select().from(migrationRuns).where(eq(migrationRuns.id, runId));
  if (!run) throw new AppError(404, "not_found", "No such run.");
  if (run.status === "completed") throw new AppError(409, "invalid_state", "The run has completed.");
  await setRun(deps, runId, { status: "cancelled", finishedAt: new Date().toISOString() });
  await deps.db
    .update(runTenants)
    .set({ status: "skipped" })
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["pending", "queued"])));
  return runProgress(deps, runId);
}

export interface FleetStatus {
  /** Latest migration in the bundle the Worker carries. */
  readonly latest: string | null;
  /** Active tenants per schema version. */
  readonly versions: Record<string, number>;
  readonly behind: number;
  readonly activeTenants: number;
  readonly lastRun: RunProgress | null;
}

export async function fleetStatus(deps: ControlDeps, bundle: MigrationBundle): Promise<FleetStatus> {
  const rows = await deps.db
    .select({ version: tenants.schemaVersion, n: count() })
    .from(tenants)
    .where(eq(tenants.status, "active"))
    .groupBy(tenants.schemaVersion);
  const latest = bundle.at(-1)?.name ?? null;
  const versions: Record<string, number> = {};
  let behind = 0;
  let active = 0;
  for (const row of rows) {
    const n = Number(row.n);
    versions[row.version ?? "(none)"] = n;
    active += n;
    if (row.version !== latest) behind += n;
  }
  return { latest, versions, behind, activeTenants: active, lastRun: (await latestRun(deps)) ?? null };
}
