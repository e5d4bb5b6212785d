/**
 * A run as the rollout page shows it and polls it: `runProgress` (the admin API's own view) plus the
 * per-phase counts, the tenants finished per second so far and the time left at that rate.
 */
import type { Context } from "hono";
import { type PhaseProgress, phaseProgress } from "../../control/fleet/overview.ts";
import { type RunProgress, runProgress } from "../../control/fleet/runs.ts";
import { controlDeps } from "../admin/request-deps.ts";
import type { ConsoleEnv } from "./guard.ts";

export interface RunView {
  readonly run: RunProgress;
  readonly phases: PhaseProgress[];
  /** Tenants that reached an end state (done, failed, drift, skipped). */
  readonly finished: number;
  readonly perSecond: number | null;
  readonly etaSeconds: number | null;
}

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

export async function runView(c: Context<ConsoleEnv>, runId: string): Promise<RunView> {
  const deps = controlDeps(c);
  const [run, phases] = await Promise.all([runProgress(deps, runId), phaseProgress(deps, runId)]);
  return { run, phases, finished: finishedOf(run.counts), ...pace(run) };
}
