/**
 * One fleet run at a time, kept by the database: two `startRun`s at once both read "nothing is
 * running" before either inserts. Here both are held just before their insert into migration_runs
 * until both have got there, so each has already passed the read; exactly one may start, the other
 * must get 409 `conflict`, and at no time are two runs running.
 *
 * The runs' messages go to an in-memory list and are never consumed; the run started is cancelled.
 */
import { neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import type { FleetDeps, MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun, type RunProgress, startRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns } from "../../src/control/schema.ts";
import { controlDeps, cron, sleep } from "./support.ts";

const sent: MigrateMessage[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-start-race"),
  send: async (messages) => {
    sent.push(...messages);
  },
});
const started: string[] = [];

/** Holds every insert into migration_runs until `count` of them have arrived (or a while has passed). */
function holdInserts(count: number): () => void {
  let arrived = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const timeout = setTimeout(release, 10_000);
  neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body ?? "{}")) as { query?: string; queries?: { query: string }[] };
    const texts = body.queries ? body.queries.map((q) => q.query) : [String(body.query)];
    if (texts.some((text) => /insert into "migration_runs"/i.test(text))) {
      arrived += 1;
      if (arrived >= count) release();
      await gate;
    }
    return fetch(input, init);
  };
  return () => {
    clearTimeout(timeout);
    release();
    neonConfig.fetchFunction = undefined;
  };
}

const runningNow = async () =>
  (await deps().db.select({ id: migrationRuns.id }).from(migrationRuns).where(eq(migrationRuns.status, "running")))
    .length;

describe("fleet: two runs started at once", () => {
  afterAll(async () => {
    neonConfig.fetchFunction = undefined;
    for (const id of started) await cancelRun(deps(), id).catch(() => undefined);
  });

  it("one starts, the other gets 409 conflict, never two running", async () => {
    // Another test file's run may be running: wait (pushing it with cron) until both of ours got past the read.
    const deadline = Date.now() + 120_000;
    let outcomes: PromiseSettledResult<RunProgress>[] = [];
    for (;;) {
      const done = holdInserts(2);
      try {
        outcomes = await Promise.allSettled([
          startRun(deps(), { kind: "apply", concurrency: 1, maxFailures: 1000 }),
          startRun(deps(), { kind: "apply", concurrency: 1, maxFailures: 1000, dryRun: true }),
        ]);
      } finally {
        done();
      }
      for (const o of outcomes) if (o.status === "fulfilled") started.push(o.value.id);
      if (outcomes.some((o) => o.status === "fulfilled") || Date.now() > deadline) break;
      await sleep(1_000);
      await cron();
    }
    const fulfilled = outcomes.filter((o) => o.status === "fulfilled");
    const rejected = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ status: 409, code: "conflict" });
    expect(await runningNow()).toBeLessThanOrEqual(1);
  });
});
