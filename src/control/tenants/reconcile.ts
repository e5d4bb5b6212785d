/**
 * Reconciliation: repairs drift between the control database and KV (a write that failed after
 * its commit, a record edited by hand, a key left behind). Missing records are written, stale ones
 * rewritten, orphans (keys no tenant should have) deleted. Run by cron and on demand; audited.
 *
 * A pass over the whole fleet does not fit one invocation at scale (1,000 KV operations each; a
 * full rewrite of 10,000 tenants is over 10,000 writes), so it is paged: phase `records` walks the
 * tenants by id, 200 at a time, reading their records in bulk; phases `host:` and `slug:` list KV
 * 1,000 keys at a time and delete the keys no tenant should have. Each step spends at most a budget
 * of operations, stops at a clean point and commits where it stopped (job-cursor.ts); the caller
 * queues the next step while the pass is not done.
 */
import { and, asc, eq, gt, inArray, isNotNull } from "drizzle-orm";
import { hostKey, slugKey } from "../../shared/tenant-record.ts";
import { domains, tenants } from "../schema.ts";
import { audited } from "./audit.ts";
import type { ControlDeps } from "./deps.ts";
import { commitStep, type JobCursor, loadCursor, startPass } from "./job-cursor.ts";
import { Budget } from "./kv-bulk.ts";
import { PROJECTED } from "./projection.ts";
import { repairRecords } from "./repair-records.ts";

export const RECONCILE_JOB = "reconcile";

export interface ReconcileProgress {
  readonly checked: number;
  readonly missing: number;
  readonly stale: number;
  readonly orphan: number;
  readonly ok: number;
}

export interface ReconcileReport extends ReconcileProgress {
  readonly pass: string;
  readonly seq: number;
  /** `records`, `host:`, `slug:` or `done`. */
  readonly phase: string;
  readonly done: boolean;
}

/** The queue message that takes a pass one step further. */
export interface ReconcileMessage {
  readonly kind: "reconcile";
  readonly pass: string;
  readonly seq: number;
}

/** Operations (KV and control database) one step may spend, under the 1,000 of an invocation. */
export const STEP_BUDGET = 700;
const PAGE = 200;
/** A pass not advanced for this long lost its message: the cron takes it further itself. */
const STALLED_AFTER_MS = 5 * 60_000;

type Counts = { -readonly [K in keyof ReconcileProgress]: number };
const ZERO: Counts = { checked: 0, missing: 0, stale: 0, orphan: 0, ok: 0 };

/** One page of tenants after `after`: their records read in bulk, the missing and stale written. */
async function recordsPage(
  deps: ControlDeps,
  after: string | null,
  budget: Budget,
  counts: Counts,
): Promise<{ next: string | null; exhausted: boolean; stopped: boolean }> {
  budget.spend();
  const page = await deps.db
    .select()
    .from(tenants)
    .where(and(inArray(tenants.status, [...PROJECTED]), after ? gt(tenants.id, after) : undefined))
    .orderBy(asc(tenants.id))
    .limit(PAGE);
  if (page.length === 0) return { next: after, exhausted: true, stopped: false };
  const { last, stopped } = await repairRecords(deps, page, budget, counts, { after });
  return { next: last, exhausted: !stopped && page.length < PAGE, stopped };
}

/** The keys among `keys` (all `host:` or all `slug:`) that some tenant should have. */
async function wantedKeys(deps: ControlDeps, prefix: "host:" | "slug:", keys: string[]): Promise<Set<string>> {
  const names = keys.map((key) => key.slice(prefix.length));
  if (names.length === 0) return new Set();
  const served = and(inArray(tenants.status, [...PROJECTED]), isNotNull(tenants.dbSecret));
  if (prefix === "slug:") {
    const rows = await deps.db
      .select({ slug: tenants.slug })
      .from(tenants)
      .where(and(served, inArray(tenants.slug, names)));
    return new Set(rows.map((r) => slugKey(r.slug)));
  }
  const rows = await deps.db
    .select({ hostname: domains.hostname })
    .from(domains)
    .innerJoin(tenants, eq(tenants.id, domains.tenantId))
    // Only active domains are served (projection.ts): a pending or deleted one's host: key is an orphan.
    .where(and(served, eq(domains.status, "active"), inArray(domains.hostname, names)));
  return new Set(rows.map((r) => hostKey(r.hostname)));
}

/** One KV listing page of `prefix`: keys no tenant should have are deleted. */
async function orphanPage(
  deps: ControlDeps,
  prefix: "host:" | "slug:",
  cursor: string | null,
  budget: Budget,
  counts: Counts,
): Promise<{ cursor: string | null; complete: boolean; stopped: boolean }> {
  budget.spend(2);
  const page = await deps.kv.list({ prefix, cursor: cursor ?? undefined });
  const keys = page.keys.map((k) => k.name);
  const wanted = await wantedKeys(deps, prefix, keys);
  for (const key of keys.filter((k) => !wanted.has(k))) {
    // Out of budget: list this page again next step (what was deleted is gone from it).
    if (!budget.fits(1)) return { cursor, complete: false, stopped: true };
    budget.spend();
    counts.orphan += 1;
    await deps.kv.delete(key);
  }
  if (page.list_complete) return { cursor: null, complete: true, stopped: false };
  return { cursor: page.cursor ?? null, complete: false, stopped: false };
}

const NEXT_PHASE: Record<string, string> = { records: "host:", "host:": "slug:", "slug:": "done" };

/**
 * Takes a pass as far as `budget` allows from where `from` stands, and commits it; null when
 * another step of the pass committed first (its caller queues the next step, not this one).
 */
async function step(deps: ControlDeps, from: JobCursor, budget: Budget): Promise<ReconcileReport | null> {
  const counts: Counts = { ...ZERO, ...from.progress };
  const before = counts.missing + counts.stale + counts.orphan;
  let phase = from.phase;
  let position = from.cursor;
  while (phase !== "done" && budget.left > 4) {
    const outcome =
      phase === "records"
        ? await recordsPage(deps, position, budget, counts).then((r) => ({
            ...r,
            complete: r.exhausted,
            cursor: r.next,
          }))
        : await orphanPage(deps, phase === "host:" ? "host:" : "slug:", position, budget, counts);
    if (outcome.complete) {
      phase = NEXT_PHASE[phase] ?? "done";
      position = null;
    } else position = outcome.cursor;
    if (outcome.stopped) break;
  }
  const done = phase === "done";
  const committed = await commitStep(deps, from, { phase, cursor: position, progress: counts, done });
  if (counts.missing + counts.stale + counts.orphan > before) deps.onProjected?.();
  if (!committed) return null;
  return { ...counts, pass: from.pass, seq: from.seq + 1, phase, done };
}

export interface ReconcileOptions {
  /** Start a new pass (an operator asked for one). */
  readonly restart?: boolean;
  /** Continue this pass from this step (a queue message); nothing if it has moved on. */
  readonly from?: Pick<ReconcileMessage, "pass" | "seq">;
  readonly budget?: number;
}

/**
 * One step of reconciliation. Without options (the cron): starts a pass when none is under way,
 * resumes one that stalled, and otherwise leaves it to the queue (null). Returns the pass's
 * progress so far; when it is not `done`, the caller queues `nextMessage(report)`.
 */
export async function reconcile(deps: ControlDeps, options: ReconcileOptions = {}): Promise<ReconcileReport | null> {
  let cursor = await loadCursor(deps, RECONCILE_JOB);
  if (options.from) {
    if (!cursor || cursor.pass !== options.from.pass || cursor.seq !== options.from.seq || cursor.finishedAt)
      return null;
  } else if (options.restart || !cursor || cursor.finishedAt) {
    cursor = await startPass(deps, RECONCILE_JOB, "records", { ...ZERO });
  } else if (Date.now() - Date.parse(cursor.updatedAt) < STALLED_AFTER_MS) {
    return null;
  }
  const from = cursor;
  return audited(
    deps,
    "kv.reconcile",
    "*",
    () => step(deps, from, new Budget(options.budget ?? STEP_BUDGET)),
    (report) => (report ? { ...report } : { superseded: true }),
  );
}

/** Where the latest pass stands (its counts so far), or null when none ever ran. */
export async function reconcileProgress(deps: ControlDeps): Promise<ReconcileReport | null> {
  const cursor = await loadCursor(deps, RECONCILE_JOB);
  if (!cursor) return null;
  const counts: Counts = { ...ZERO, ...cursor.progress };
  const done = cursor.finishedAt !== null;
  return { ...counts, pass: cursor.pass, seq: cursor.seq, phase: done ? "done" : cursor.phase, done };
}

export function nextMessage(report: ReconcileReport): ReconcileMessage {
  return { kind: "reconcile", pass: report.pass, seq: report.seq };
}

/** A whole pass in one go, for Node tooling (`npm run dev`), which has no per-invocation limits. */
export async function reconcileAll(deps: ControlDeps): Promise<ReconcileReport> {
  let report = await reconcile(deps, { restart: true });
  while (report && !report.done) report = await reconcile(deps, { from: report });
  if (!report) throw new Error("another reconcile pass started meanwhile");
  return report;
}
