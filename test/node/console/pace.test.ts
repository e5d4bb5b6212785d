/**
 * The rollout page's pace line: before any tenant has finished it says the run is measuring (not a
 * bare dash), once one has it gives tenants/s and the time left, and a stopped run has no ETA.
 */
import { describe, expect, it } from "vitest";
import type { RunProgress } from "../../../src/control/fleet/runs.ts";
import { finishedOf, pace, paceText } from "../../../src/worker/console/pace.ts";

const START = "2026-01-01T00:00:00.000Z";

function run(status: RunProgress["status"], done: number, total: number, finishedAt: string | null = null) {
  return {
    status,
    createdAt: START,
    finishedAt,
    total,
    counts: { pending: total - done, running: 0, done, failed: 0, drift: 0, skipped: 0 },
  } as unknown as RunProgress;
}

const words = (r: RunProgress, now: number) => paceText(r, finishedOf(r.counts), pace(r, now));

describe("rollout pace text", () => {
  it("says it is waiting for the first tenant while none has finished", () => {
    expect(words(run("running", 0, 6), Date.parse(START) + 5_000)).toEqual({
      rateText: "measuring: waiting for the first tenant to finish",
      etaText: "known once one has",
    });
  });

  it("gives tenants per second and the seconds left once tenants have finished", () => {
    // 4 of 10 in 2 s: 2 tenants/s, 6 left: 3 s.
    expect(words(run("running", 4, 10), Date.parse(START) + 2_000)).toEqual({
      rateText: "2 tenants/s",
      etaText: "3 s",
    });
  });

  it("keeps the measured rate of a stopped run, without an ETA", () => {
    const halted = run("halted", 3, 6, "2026-01-01T00:00:06.000Z");
    expect(words(halted, Date.parse(START) + 60_000)).toEqual({
      rateText: "0.5 tenants/s",
      etaText: "none: the run is halted",
    });
    expect(words(run("cancelled", 0, 6, START), Date.parse(START) + 1_000)).toEqual({
      rateText: "no tenant finished",
      etaText: "none: the run is cancelled",
    });
  });
});
