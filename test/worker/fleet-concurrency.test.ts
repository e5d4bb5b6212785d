/**
 * `concurrency` bounds the tenants in flight even when dispatches overlap: every finishing consumer
 * dispatches, and so does the cron, so two of them often run at once. Here one dispatch is held
 * just before it queues tenants (its request to the control database waits) while a second one runs
 * to the end; when the first goes on, it must count what the second queued.
 *
 * The run's messages go to an in-memory list and are never consumed: the test marks tenants done
 * itself, as consumers that finished and have not dispatched yet.
 */
import { neonConfig } from "@neondatabase/serverless";
import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { dispatch, type FleetDeps, type MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns, runTenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { controlDeps, startRunWhenFree } from "./support.ts";

const TAG = `fc${Math.random().toString(36).slice(2, 6)}`;
const CONCURRENCY = 2;
const sent: MigrateMessage[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-concurrency"),
  send: async (messages) => {
    sent.push(...messages);
  },
});

let runId = "";

async function statuses(): Promise<Record<string, number>> {
  const rows = await deps()
    .db.select({ status: runTenants.status })
    .from(runTenants)
    .where(eq(runTenants.runId, runId));
  const counts: Record<string, number> = {};
  for (const { status } of rows) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("fleet: overlapping dispatches keep to `concurrency`", () => {
  beforeAll(async () => {
    // Enough tenants that the run has pending ones left after two rounds of CONCURRENCY.
    await Promise.all([1, 2, 3, 4].map((n) => createTenant(deps(), { slug: `${TAG}-${n}`, region: "local" })));
    runId = (await startRunWhenFree(deps(), { concurrency: CONCURRENCY, maxFailures: 1000 })).id;
  }, 180_000);

  afterAll(async () => {
    neonConfig.fetchFunction = undefined;
    const [run] = runId ? await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId)) : [];
    if (run && run.status !== "completed" && run.status !== "cancelled") await cancelRun(deps(), runId);
  });

  it("a dispatch held before it queues counts what another queued meanwhile", async () => {
    expect(await statuses()).toMatchObject({ queued: CONCURRENCY });
    expect((await statuses()).pending).toBeGreaterThanOrEqual(2 * CONCURRENCY);
    // The first tenants finish (their consumers have not dispatched yet).
    await deps()
      .db.update(runTenants)
      .set({ status: "done" })
      .where(and(eq(runTenants.runId, runId), eq(runTenants.status, "queued")));
    const before = sent.length;

    // Hold the first request that moves run_tenants rows to "queued" until the other dispatch ends.
    let held = false;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
      const body = JSON.parse(String(init?.body ?? "{}")) as { query?: string; queries?: { query: string }[] };
      const texts = body.queries ? body.queries.map((q) => q.query) : [String(body.query)];
      if (!held && texts.some((text) => /update "run_tenants" set "status"/i.test(text))) {
        held = true;
        await gate;
      }
      return fetch(input, init);
    };
    try {
      const first = dispatch(deps());
      await vi.waitFor(() => expect(held).toBe(true), { timeout: 10_000, interval: 10 });
      const second = await dispatch(deps());
      release();
      const firstResult = await first;
      expect(second.queued + firstResult.queued).toBe(CONCURRENCY);
    } finally {
      release();
      neonConfig.fetchFunction = undefined;
    }
    const counts = await statuses();
    expect(counts.queued).toBe(CONCURRENCY);
    expect(counts.running ?? 0).toBe(0);
    const mine = sent.slice(before).filter((m) => m.runId === runId);
    expect(mine).toHaveLength(CONCURRENCY);
    // Each of them is a tenant that is queued now, once.
    const queued = await deps()
      .db.select({ tenantId: runTenants.tenantId })
      .from(runTenants)
      .where(and(eq(runTenants.runId, runId), inArray(runTenants.status, ["queued"])));
    expect(mine.map((m) => m.tenantId).sort()).toEqual(queued.map((q) => q.tenantId).sort());
  });
});
