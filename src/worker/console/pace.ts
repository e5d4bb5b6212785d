/**
 * A run's pace, pure: tenants finished, tenants per second from the run's start to now (or to its
 * end), the seconds left at that rate, and how the rollout page words them.
 */
import type { RunProgress } from "../../control/fleet/runs.ts";

export const finishedOf = (counts: Partial<Record<string, number>>) =>
  (counts.done ?? 0) + (counts.failed ?? 0) + (counts.drift ?? 0) + (counts.skipped ?? 0);

/** Tenants per second and seconds left, from the run's start to now (or to its end). */
export function pace(run: RunProgress, now = Date.now()): { perSecond: number | null; etaSeconds: number | null } {
  const finished = finishedOf(run.counts);
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const seconds = (end - Date.parse(run.createdAt)) / 1000;
  if (!(seconds > 0) || finished === 0) return { perSecond: null, etaSeconds: null };
  const perSecond = finished / seconds;
  const left = run.status === "running" ? run.total - finished : 0;
  return { perSecond: Math.round(perSecond * 100) / 100, etaSeconds: Math.ceil(left / perSecond) };
}

/**
 * The pace in words: before any tenant has finished there is no rate to measure yet, so say what
 * the run is waiting for instead of a bare dash; once one has, tenants/s and the time left.
 */
export function paceText(
  run: Pick<RunProgress, "status">,
  finished: number,
  pace: { perSecond: number | null; etaSeconds: number | null },
): { rateText: string; etaText: string } {
  const running = run.status === "running";
  if (pace.perSecond === null)
    return running
      ? { rateText: "measuring: waiting for the first tenant to finish", etaText: "known once one has" }
      : { rateText: finished === 0 ? "no tenant finished" : "not measured", etaText: `none: the run is ${run.status}` };
  return {
    rateText: `${pace.perSecond} tenants/s`,
    etaText: running ? `${pace.etaSeconds} s` : `none: the run is ${run.status}`,
  };
}
