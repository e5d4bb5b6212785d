/**
 * Fleet migration runs: roll a schema change out to every tenant database, as an operator sees it.
 *
 * A run snapshots the active tenants into a central ledger (run_tenants), split into a canary phase
 * and waves (plan.ts). `dispatch` (dispatch.ts: cron, and after every finished tenant) queues at
 * most `concurrency` tenants of the current phase as Queue messages; the consumer (consumer.ts)
 * applies one tenant per message and records status, attempts, error and timing. A failed tenant
 * does not stop the others; failures past `maxFailures` halt the run, and a failing canary halts it
 * before any wave. A run completes only with every tenant done: one whose last wave leaves failures
 * is halted too. This file starts a run, reports its progress and the fleet's status, `resume`
 * re-queues what is pending or failed, `cancel` skips what has not started.
 */
import { and, asc, count, desc, eq, inArray, min, sql } from "drizzle-orm";
import { describeDrop, dropsOf } from "../../shared/destructive-sql.ts";
import { AppError } from "../../shared/errors.ts";
import type { MigrationBundle } from "../../shared/migrations.ts";
import {
  auditLog,
  migrationRuns,
  ONE_RUNNING_RUN,
  type RunState,
  type RunTenantState,
  runTenants,
  tenants,
} from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import { isUniqueViolation } from "../tenants/rows.ts";
import { dispatch, type FleetDeps, setRun } from "./dispatch.ts";
import { migrationsOfRun, releasePauses } from "./pause.ts";
import { phaseCount, planPhases, unknownCanaries } from "./plan.ts";

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
  /** rollback: drop or truncate without an export of each tenant first (drop-guard.ts). */
  readonly force?: boolean | undefined;
}

export interface RunProgress {
  readonly id: string;
  readonly kind: "apply" | "rollback";
  readonly target: string | null;
  readonly steps: number | null;
  readonly dryRun: boolean;
  readonly force: boolean;
  /** rollback: what its down files drop or truncate across the fleet's versions. */
  readonly drops: string[];
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

export interface FleetStatus {
  /** Latest migration in the bundle the Worker carries. */
  readonly latest: string | null;
  /** Active tenants per schema version. */
  readonly versions: Record<string, number>;
  readonly behind: number;
  readonly activeTenants: number;
  readonly lastRun: RunProgress | null;
}

const newRunId = () =>
  `run_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;

/** The run's kind and target migration; refuses a target not in the bundle and a rollback of no steps. */
function checkRunOptions(deps: FleetDeps, options: RunOptions): { kind: "apply" | "rollback"; target: string | null } {
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
  return { kind, target };
}

/**
 * Makes a run `running`; when another one already is, the partial unique index refuses the write
 * (the read before it is only for a friendlier answer) and the caller gets the same 409 `conflict`.
 */
async function oneRunning(write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (isUniqueViolation(error, ONE_RUNNING_RUN))
      throw new AppError(409, "conflict", "Another run is still running: cancel or finish it first.", { cause: error });
    throw error;
  }
}

export async function startRun(deps: FleetDeps, options: RunOptions): Promise<RunProgress> {
  const { kind, target } = checkRunOptions(deps, options);
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
  const unknown = unknownCanaries(active, options.canaryTenants);
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
  const id = newRunId();
  const steps = kind === "rollback" ? (options.steps ?? null) : null;
  const drops = kind === "rollback" ? await rollbackDrops(deps, steps ?? 1) : null;
  await oneRunning(() =>
    deps.db.insert(migrationRuns).values({
      id,
      kind,
      target,
      steps,
      dryRun: options.dryRun ?? false,
      force: kind === "rollback" && options.force === true,
      drops,
      status: planned.length === 0 ? "completed" : "running",
      concurrency: Math.max(1, Math.min(250, options.concurrency ?? 10)),
      maxFailures: Math.max(0, options.maxFailures ?? 10),
      phases: phaseCount(planned),
      createdBy: deps.actor,
      ...(planned.length === 0 ? { finishedAt: new Date().toISOString() } : {}),
    }),
  );
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

/** What a rollback of `steps` would drop, over the versions the active tenants are recorded at. */
async function rollbackDrops(deps: FleetDeps, steps: number): Promise<string[]> {
  const versions = await deps.db
    .selectDistinct({ version: tenants.schemaVersion })
    .from(tenants)
    .where(eq(tenants.status, "active"));
  const run = { kind: "rollback" as const, target: null, steps, dryRun: false };
  const undone = versions.flatMap(({ version }) => migrationsOfRun(deps.tenantBundle, run, version).reverse());
  return [...new Set(dropsOf(undone).map(describeDrop))];
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
    force: run.force,
    drops: run.drops ?? [],
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
  await oneRunning(() => setRun(deps, runId, { status: "running", phase, haltReason: null, finishedAt: null }));
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
  // A consumer that died mid-migration left its tenant paused, and a cancelled run is never
  // delivered again to release it: the operator's cancel does.
  await releasePauses(deps, runId);
  return runProgress(deps, runId);
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
