/** Which runs pause a tenant's writes: only real runs that apply or undo a `pauseWrites` migration. */
import { describe, expect, it } from "vitest";
import { migrationsOfRun, pausesWrites } from "../../../src/control/fleet/pause.ts";
import type { Migration } from "../../../src/shared/migrations.ts";

const m = (name: string, pauseWrites = false): Migration => ({
  name,
  checksum: `sum-${name}`,
  statements: [],
  down: [],
  pauseWrites,
});
const BUNDLE = [m("0000"), m("0001"), m("0002", true), m("0003")];
const apply = (target: string | null, dryRun = false) => ({ kind: "apply" as const, target, steps: null, dryRun });
const rollback = (steps: number, dryRun = false) => ({ kind: "rollback" as const, target: null, steps, dryRun });
const names = (list: Migration[]) => list.map((x) => x.name);

describe("migrationsOfRun", () => {
  it("an apply runs what comes after the recorded version, up to the target", () => {
    expect(names(migrationsOfRun(BUNDLE, apply(null), "0001"))).toEqual(["0002", "0003"]);
    expect(names(migrationsOfRun(BUNDLE, apply("0002"), null))).toEqual(["0000", "0001", "0002"]);
    expect(names(migrationsOfRun(BUNDLE, apply(null), "0003"))).toEqual([]);
  });

  it("a rollback undoes the `steps` ending at the recorded version", () => {
    expect(names(migrationsOfRun(BUNDLE, rollback(2), "0003"))).toEqual(["0002", "0003"]);
    expect(names(migrationsOfRun(BUNDLE, rollback(1), "0003"))).toEqual(["0003"]);
    expect(names(migrationsOfRun(BUNDLE, rollback(1), null))).toEqual([]);
  });
});

describe("pausesWrites", () => {
  it("pauses only a real run that touches a flagged migration", () => {
    expect(pausesWrites(BUNDLE, apply(null), "0001")).toBe(true);
    expect(pausesWrites(BUNDLE, apply("0001"), "0000")).toBe(false);
    expect(pausesWrites(BUNDLE, apply(null), "0002")).toBe(false);
    expect(pausesWrites(BUNDLE, apply(null, true), "0001")).toBe(false);
    expect(pausesWrites(BUNDLE, rollback(2), "0003")).toBe(true);
    expect(pausesWrites(BUNDLE, rollback(1), "0003")).toBe(false);
  });
});
