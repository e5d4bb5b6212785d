/**
 * The nightly export dispatch: one export per active tenant, recorded and queued. At 10,000
 * tenants, one invocation would make ~300 control-database requests and queue sends, and more
 * with every tenant, so it is paged like reconcile: the cron starts a pass (job_cursors, job
 * `exports:nightly`), each step queues up to 1,000 tenants (10 pages of 100: one insert and one
 * sendBatch each) and commits where it stopped, and the caller queues a message for the next step
 * while the pass is not done. A duplicated message finds `seq` moved and does nothing; a tenant
 * that already has a nightly export of this pass is skipped (under an advisory lock), so a step
 * that ran twice at once still records one export per tenant.
 */
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { exportsTable, tenants } from "../schema.ts";
import { commitStep, loadCursor, startPass } from "../tenants/job-cursor.ts";
import { type ExportDeps, exportKeys, newExportId } from "./service.ts";

export const NIGHTLY_JOB = "exports:nightly";
/** Tenants per page (one sendBatch) and pages per step. */
const PAGE = 100;
const PAGES_PER_STEP = 10;

export interface NightlyReport {
  readonly pass: string;
  readonly seq: number;
  /** Exports queued by the pass so far. */
  readonly queued: number;
  readonly done: boolean;
}

/** The queue message that takes a nightly pass one step further. */
export interface NightlyMessage {
  readonly kind: "exports:nightly";
  readonly pass: string;
  readonly seq: number;
}

/** Records a nightly export for each tenant of `page` without one in this pass; returns their ids. */
async function recordPage(
  deps: ExportDeps,
  page: { id: string; slug: string }[],
  passStarted: string,
): Promise<string[]> {
  const values = sql.join(
    page.map((t) => {
      const id = newExportId();
      return sql`(${id}::text, ${t.id}::text, ${t.slug}::text, ${exportKeys(t.id, id).dump}::text)`;
    }),
    sql`, `,
  );
  // Under a transaction-scoped advisory lock: two deliveries of one step take turns, and the
  // second sees the first's rows.
  const [, inserted] = await deps.db.batch([
    deps.db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${NIGHTLY_JOB}, 0))`),
    deps.db.execute<{ id: string }>(sql`
    INSERT INTO ${exportsTable} (id, tenant_id, slug, kind, status, object_key, created_by)
    SELECT v.id, v.tenant_id, v.slug, 'nightly', 'pending', v.object_key, ${deps.actor}
    FROM (VALUES ${values}) AS v(id, tenant_id, slug, object_key)
    WHERE NOT EXISTS (
      SELECT 1 FROM ${exportsTable} e
      WHERE e.tenant_id = v.tenant_id AND e.kind = 'nightly' AND e.created_at >= ${passStarted}::timestamptz)
    RETURNING id`),
  ]);
  return inserted.rows.map((r) => r.id);
}

/**
 * One step of the nightly dispatch. Without `from` (the cron) it starts a new pass, unless the
 * latest pass was started for the same `scheduledTime` (the platform may deliver one cron schedule
 * more than once); with it (a queue message) it continues that pass, or returns null when the
 * pass has moved on.
 */
export async function scheduleNightlyExports(
  deps: ExportDeps,
  options: { from?: Pick<NightlyMessage, "pass" | "seq">; scheduledTime?: number } = {},
): Promise<NightlyReport | null> {
  let cursor = await loadCursor(deps, NIGHTLY_JOB);
  const from = options.from;
  if (from) {
    if (!cursor || cursor.pass !== from.pass || cursor.seq !== from.seq || cursor.finishedAt) return null;
  } else if (cursor && options.scheduledTime !== undefined && cursor.progress.scheduledTime === options.scheduledTime) {
    return null;
  } else {
    const progress: Record<string, number> = { queued: 0 };
    if (options.scheduledTime !== undefined) progress.scheduledTime = options.scheduledTime;
    cursor = await startPass(deps, NIGHTLY_JOB, "tenants", progress);
  }
  let queued = Number(cursor.progress.queued ?? 0);
  let after = cursor.cursor;
  let done = false;
  for (let n = 0; n < PAGES_PER_STEP && !done; n += 1) {
    const page = await deps.db
      .select({ id: tenants.id, slug: tenants.slug })
      .from(tenants)
      .where(and(eq(tenants.status, "active"), after ? gt(tenants.id, after) : undefined))
      .orderBy(asc(tenants.id))
      .limit(PAGE);
    done = page.length < PAGE;
    if (page.length === 0) break;
    const ids = await recordPage(deps, page, cursor.startedAt);
    if (ids.length > 0) await deps.sendExport(ids.map((exportId) => ({ kind: "export", exportId })));
    queued += ids.length;
    after = page.at(-1)?.id ?? after;
  }
  const committed = await commitStep(deps, cursor, {
    phase: done ? "done" : "tenants",
    cursor: after,
    progress: { ...cursor.progress, queued },
    done,
  });
  if (!committed) return null;
  return { pass: cursor.pass, seq: cursor.seq + 1, queued, done };
}

export function nextNightlyMessage(report: NightlyReport): NightlyMessage {
  return { kind: "exports:nightly", pass: report.pass, seq: report.seq };
}
