/**
 * Where a paged job's current pass stands (job_cursors). A pass is started (or restarted) by the
 * cron or an operator, advanced one step per invocation, and each step commits only if `seq` is
 * still the one it started from: a duplicated or late queue message finds `seq` moved and does
 * nothing, so a pass advances once per step however often a message is delivered.
 */
import { and, eq } from "drizzle-orm";
import { jobCursors } from "../schema.ts";
import type { ControlDeps } from "./deps.ts";

export type JobCursor = typeof jobCursors.$inferSelect;

export async function loadCursor(deps: ControlDeps, job: string): Promise<JobCursor | undefined> {
  const [row] = await deps.db.select().from(jobCursors).where(eq(jobCursors.job, job));
  return row;
}

/** Starts a new pass from its first phase, replacing whatever pass there was. */
export async function startPass(
  deps: ControlDeps,
  job: string,
  phase: string,
  progress: Record<string, number>,
): Promise<JobCursor> {
  const now = new Date().toISOString();
  const values = {
    job,
    pass: crypto.randomUUID(),
    seq: 0,
    phase,
    cursor: null,
    progress,
    startedAt: now,
    updatedAt: now,
    finishedAt: null,
  };
  const [row] = await deps.db
    .insert(jobCursors)
    .values(values)
    .onConflictDoUpdate({ target: jobCursors.job, set: values })
    .returning();
  if (!row) throw new Error("job cursor not written");
  return row;
}

/** Commits one step; false when another step of the same pass (or a new pass) got there first. */
export async function commitStep(
  deps: ControlDeps,
  from: JobCursor,
  next: { phase: string; cursor: string | null; progress: Record<string, number>; done: boolean },
): Promise<boolean> {
  const now = new Date().toISOString();
  const updated = await deps.db
    .update(jobCursors)
    .set({
      seq: from.seq + 1,
      phase: next.phase,
      cursor: next.cursor,
      progress: next.progress,
      updatedAt: now,
      finishedAt: next.done ? now : null,
    })
    .where(and(eq(jobCursors.job, from.job), eq(jobCursors.pass, from.pass), eq(jobCursors.seq, from.seq)))
    .returning({ seq: jobCursors.seq });
  return updated.length > 0;
}
