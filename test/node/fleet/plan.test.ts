/**
 * The pure decisions of a fleet run (no I/O): how its tenants split into a canary phase and waves
 * (planPhases, unknownCanaries) and what dispatch does next with a running run (dispatchStep).
 */
import { describe, expect, it } from "vitest";
import { dispatchStep, phaseCount, planPhases, unknownCanaries } from "../../../src/control/fleet/plan.ts";
import type { RunTenantState } from "../../../src/control/schema.ts";

const fleet = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `ten_${String(i).padStart(2, "0")}`, slug: `shop-${i}` }));
const phasesOf = (plan: { slug: string; phase: number }[]) =>
  Array.from({ length: Math.max(0, ...plan.map((t) => t.phase + 1)) }, (_, phase) =>
    plan.flatMap((t, i) => (t.phase === phase ? [i] : [])),
  );

describe("planPhases", () => {
  it("takes the first N tenants as the canary, then waves of the given size", () => {
    const plan = planPhases(fleet(10), { canary: 2, wave: 3 });
    expect(plan.map((t) => t.phase)).toEqual([0, 0, 1, 1, 1, 2, 2, 2, 3, 3]);
    // Every tenant once, in the given order, with its id and slug.
    expect(plan.map((t) => t.id)).toEqual(fleet(10).map((t) => t.id));
    expect(plan[4]).toEqual({ id: "ten_04", slug: "shop-4", phase: 1 });
  });

  it("puts everything after the canary in one wave when no wave size is given", () => {
    expect(planPhases(fleet(5), { canary: 1 }).map((t) => t.phase)).toEqual([0, 1, 1, 1, 1]);
    expect(planPhases(fleet(5), { canary: 1, wave: 0 }).map((t) => t.phase)).toEqual([0, 1, 1, 1, 1]);
  });

  it("without a canary, the waves still start at phase 1: phase 0 is the canary's, left empty", () => {
    expect(planPhases(fleet(5), { canary: 0, wave: 2 }).map((t) => t.phase)).toEqual([1, 1, 2, 2, 3]);
    expect(planPhases(fleet(3), { canary: 0 }).map((t) => t.phase)).toEqual([1, 1, 1]);
    expect(planPhases(fleet(3), { canary: -4 }).map((t) => t.phase)).toEqual([1, 1, 1]);
  });

  it("a canary as large as the fleet leaves no wave", () => {
    expect(planPhases(fleet(3), { canary: 5, wave: 2 }).map((t) => t.phase)).toEqual([0, 0, 0]);
  });

  it("names the canary by slug or id, wherever those tenants are in the list", () => {
    const plan = planPhases(fleet(6), { canary: 3, canaryTenants: ["shop-4", "ten_01"], wave: 2 });
    // Named tenants override the count: exactly those two form phase 0, first in the plan.
    expect(plan.filter((t) => t.phase === 0).map((t) => t.slug)).toEqual(["shop-1", "shop-4"]);
    expect(plan.slice(2).map((t) => [t.slug, t.phase])).toEqual([
      ["shop-0", 1],
      ["shop-2", 1],
      ["shop-3", 2],
      ["shop-5", 2],
    ]);
  });

  // startRun refuses unknown names before planning (fleet-safety.test.ts); planPhases just matches.
  it("an unknown canary name selects no canary (the waves start at phase 1)", () => {
    const plan = planPhases(fleet(3), { canary: 0, canaryTenants: ["nope"], wave: 2 });
    expect(plan.map((t) => t.phase)).toEqual([1, 1, 2]);
  });

  it("an empty fleet has no phases", () => {
    expect(planPhases([], { canary: 2, wave: 3 })).toEqual([]);
  });

  it("waves are contiguous from 1, phase 0 holds the canary alone, each wave at most the wave size", () => {
    for (const [n, canary, wave] of [
      [1, 0, 1],
      [7, 1, 2],
      [20, 2, 10],
      [23, 3, 4],
    ] as const) {
      const groups = phasesOf(planPhases(fleet(n), { canary, wave }));
      expect(groups[0]?.length ?? 0).toBe(Math.min(canary, n));
      const waves = groups.slice(1);
      expect(waves.every((g) => g !== undefined && g.length > 0)).toBe(true);
      expect(waves.every((g) => g.length <= wave)).toBe(true);
      expect(groups.flat()).toHaveLength(n);
    }
  });
});

describe("unknownCanaries and phaseCount", () => {
  it("lists the names that match no tenant by slug or id", () => {
    expect(unknownCanaries(fleet(3), ["shop-1", "ten_02", "shop-9"])).toEqual(["shop-9"]);
    expect(unknownCanaries(fleet(3), undefined)).toEqual([]);
  });

  it("counts the phases of a plan, 0 for an empty fleet", () => {
    expect(phaseCount(planPhases(fleet(10), { canary: 2, wave: 3 }))).toBe(4);
    expect(phaseCount([])).toBe(0);
  });
});

describe("dispatchStep", () => {
  const run = { phase: 0, phases: 3, concurrency: 4, maxFailures: 2 };
  const counts =
    (values: Partial<Record<RunTenantState, number>>) =>
    (status: RunTenantState): number =>
      values[status] ?? 0;

  it("halts once the whole run's failures pass the threshold, before anything else", () => {
    expect(dispatchStep(run, counts({ pending: 5 }), 3)).toEqual({
      kind: "halt",
      reason: "3 tenants failed (threshold 2)",
    });
    expect(dispatchStep(run, counts({ pending: 5 }), 2)).toEqual({ kind: "queue", free: 4 });
  });

  it("queues up to the concurrency minus what is in flight, never below 0", () => {
    expect(dispatchStep(run, counts({ pending: 5, queued: 1, running: 2 }), 0)).toEqual({ kind: "queue", free: 1 });
    expect(dispatchStep(run, counts({ pending: 5, queued: 3, running: 3 }), 0)).toEqual({ kind: "queue", free: 0 });
    // Nothing pending but still in flight: wait (and re-send stale messages).
    expect(dispatchStep(run, counts({ running: 1 }), 0)).toEqual({ kind: "queue", free: 3 });
  });

  it("a failing canary halts the run before any wave", () => {
    expect(dispatchStep(run, counts({ done: 1, drift: 1 }), 1)).toEqual({
      kind: "halt",
      reason: "the canary failed: no wave was started",
    });
  });

  it("a finished phase advances to the next one, even with failures of a wave", () => {
    expect(dispatchStep(run, counts({ done: 2 }), 0)).toEqual({ kind: "advance" });
    expect(dispatchStep({ ...run, phase: 1 }, counts({ done: 2, failed: 1 }), 1)).toEqual({ kind: "advance" });
  });

  it("a run without a canary: the empty phase 0 advances, and a failure in its first wave is not a canary's", () => {
    const plan = planPhases(fleet(4), { canary: 0, wave: 2 });
    const noCanary = { ...run, phases: phaseCount(plan) };
    expect(noCanary.phases).toBe(3);
    expect(dispatchStep(noCanary, counts({}), 0)).toEqual({ kind: "advance" });
    expect(dispatchStep({ ...noCanary, phase: 1 }, counts({ done: 1, failed: 1 }), 1)).toEqual({ kind: "advance" });
  });

  it("the last phase completes only with no failure left in the run", () => {
    const last = { ...run, phase: 2 };
    expect(dispatchStep(last, counts({ done: 2 }), 0)).toEqual({ kind: "complete" });
    expect(dispatchStep(last, counts({ done: 2 }), 1)).toEqual({
      kind: "halt",
      reason: "1 tenant(s) failed or drifted: fix them, then resume",
    });
    // A single-phase run has no canary to halt: its failures wait for a resume like a last wave's.
    expect(dispatchStep({ ...run, phases: 1 }, counts({ failed: 1 }), 1)).toEqual({
      kind: "halt",
      reason: "1 tenant(s) failed or drifted: fix them, then resume",
    });
  });
});
