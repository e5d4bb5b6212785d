/**
 * `tenantry migrate rollback`: `--force` reaches the admin API (and only for rollbacks), and a run's
 * drops are printed, as "would drop" on a dry run, saying whether tenants are exported first.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { migrateCommand, printRun } from "../../../src/cli/migrate.ts";
import type { RunProgress } from "../../../src/control/fleet/runs.ts";

const RUN: RunProgress = {
  id: "run_0123456789abcdef",
  kind: "rollback",
  target: null,
  steps: 2,
  dryRun: true,
  force: false,
  drops: ["column orders.note (0002_order_note)"],
  status: "completed",
  phase: 0,
  phases: 1,
  concurrency: 10,
  maxFailures: 10,
  haltReason: null,
  createdAt: "2026-12-01T05:00:00.000Z",
  finishedAt: "2026-12-01T05:00:02.000Z",
  counts: { pending: 0, queued: 0, running: 0, done: 3, failed: 0, drift: 0, skipped: 0 },
  total: 3,
  failures: [],
};

class Usage extends Error {}

function command(args: string[]) {
  const bodies: unknown[] = [];
  const deps = {
    usageError: (message: string) => new Usage(message),
    client: async () => ({
      call: async <T>(_method: string, _path: string, body?: unknown) => {
        bodies.push(body);
        return { ...RUN, force: (body as { force?: boolean }).force === true } as T;
      },
    }),
  };
  return { bodies, result: migrateCommand(args, deps) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("migrate rollback --force", () => {
  it("sends force with the rollback, and refuses it on migrate run", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    const forced = command(["rollback", "--steps", "2", "--force", "--dry-run", "--no-wait"]);
    expect(await forced.result).toBe(0);
    expect(forced.bodies).toEqual([{ kind: "rollback", steps: 2, dryRun: true, force: true }]);
    const plain = command(["rollback", "--steps", "1", "--no-wait"]);
    await plain.result;
    expect(plain.bodies).toEqual([{ kind: "rollback", steps: 1 }]);
    await expect(command(["run", "--force", "--no-wait"]).result).rejects.toThrow("--force is for migrate rollback");
  });

  it("prints what a rollback drops, and how", () => {
    const lines: string[] = [];
    printRun(RUN, (line) => lines.push(line));
    expect(lines.join("\n")).toContain(
      "would drop (each tenant is exported first, or refused): column orders.note (0002_order_note)",
    );
    const forced: string[] = [];
    printRun({ ...RUN, dryRun: false, force: true }, (line) => forced.push(line));
    expect(forced.join("\n")).toContain("drops (--force: no export first): column orders.note (0002_order_note)");
    const none: string[] = [];
    printRun({ ...RUN, drops: [] }, (line) => none.push(line));
    expect(none.join("\n")).not.toContain("drop");
  });
});
