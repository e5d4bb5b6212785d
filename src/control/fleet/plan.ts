/**
 * Fleet run planning: the pure decisions of a run. How a run's tenants split into a canary phase and
 * waves (`planPhases`, stored in run_tenants by `startRun`), and what `dispatch` does next with a
 * running run given its counts (`dispatchStep`: halt, advance a phase, complete, or queue more).
 * No I/O here, so every rule of a rollout is unit-tested without a database
 * (test/node/fleet/plan.test.ts); runs.ts and dispatch.ts do the reading and writing.
 */
import type { RunTenantState } from "../schema.ts";

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
  // Waves start at phase 1 even without a canary: phase 0 is the canary's (empty, it advances at
  // once), so a failure in the first wave is never taken for a failed canary.
  return [
    ...canary.map((t) => ({ ...t, phase: 0 })),
    ...rest.map((t, index) => ({ ...t, phase: 1 + Math.floor(index / waveSize) })),
  ];
}

/** Canary names (slug or id) that match no active tenant: a misspelt canary must fail the start. */
export function unknownCanaries(
  active: readonly { id: string; slug: string }[],
  canaryTenants: readonly string[] | undefined,
): string[] {
  return (canaryTenants ?? []).filter((name) => !active.some((t) => t.slug === name || t.id === name));
}

/** How many phases a plan has (0 for an empty fleet). */
export const phaseCount = (planned: readonly { phase: number }[]): number =>
  planned.reduce((max, t) => Math.max(max, t.phase + 1), 0);

/** What dispatch does next with a running run. */
export type DispatchStep =
  | { readonly kind: "halt"; readonly reason: string }
  | { readonly kind: "advance" }
  | { readonly kind: "complete" }
  /** `free`: how many more tenants may be in flight (0: only stale messages are re-sent). */
  | { readonly kind: "queue"; readonly free: number };

/**
 * Decides a running run's next step from its current phase's counts per state and the failures of
 * the whole run (failed or drifted tenants of every phase).
 */
export function dispatchStep(
  run: { readonly phase: number; readonly phases: number; readonly concurrency: number; readonly maxFailures: number },
  phaseCounts: (status: RunTenantState) => number,
  failedTotal: number,
): DispatchStep {
  if (failedTotal > run.maxFailures)
    return { kind: "halt", reason: `${failedTotal} tenants failed (threshold ${run.maxFailures})` };
  const inFlight = phaseCounts("queued") + phaseCounts("running");
  if (phaseCounts("pending") === 0 && inFlight === 0) {
    if (run.phase === 0 && run.phases > 1 && phaseCounts("failed") + phaseCounts("drift") > 0)
      return { kind: "halt", reason: "the canary failed: no wave was started" };
    if (run.phase + 1 < run.phases) return { kind: "advance" };
    // Complete means every tenant done: a failed or drifted one waits for a fix and a resume.
    if (failedTotal > 0)
      return { kind: "halt", reason: `${failedTotal} tenant(s) failed or drifted: fix them, then resume` };
    return { kind: "complete" };
  }
  return { kind: "queue", free: Math.max(0, run.concurrency - inFlight) };
}
