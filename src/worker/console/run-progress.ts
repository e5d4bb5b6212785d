/**
 * A run as the rollout page shows it and polls it: `runProgress` (the admin API's own view) plus the
 * per-phase counts, the tenants finished per second so far and the time left at that rate.
 */
import type { Context } from "hono";
import { type PhaseProgress, phaseProgress } from "../../control/fleet/overview.ts";
import { type RunProgress, runProgress } from "../../control/fleet/runs.ts";
import { controlDeps } from "../admin/request-deps.ts";
import type { ConsoleEnv } from "./guard.ts";
import { finishedOf, pace, paceText } from "./pace.ts";

export interface RunView {
  readonly run: RunProgress;
  readonly phases: PhaseProgress[];
  /** Tenants that reached an end state (done, failed, drift, skipped). */
  readonly finished: number;
  readonly perSecond: number | null;
  readonly etaSeconds: number | null;
  /** What the page shows for the pace and the ETA (the script shows these same strings while polling). */
  readonly rateText: string;
  readonly etaText: string;
}

export async function runView(c: Context<ConsoleEnv>, runId: string): Promise<RunView> {
  const deps = controlDeps(c);
  const [run, phases] = await Promise.all([runProgress(deps, runId), phaseProgress(deps, runId)]);
  const finished = finishedOf(run.counts);
  const measured = pace(run);
  return { run, phases, finished, ...measured, ...paceText(run, finished, measured) };
}
