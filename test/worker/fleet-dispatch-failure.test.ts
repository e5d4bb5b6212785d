/**
 * A dispatch that fails midway leaves no tenant queued without a message. It used to pick tenants
 * (pending → queued, committed) and then run one more request before sending; when that request
 * failed, the picked tenants stayed queued with no message for 10 minutes, counted in flight, and
 * a rollout's last tenants waited for the cron. The scale bench found it under load (26 of 10,000
 * tenants). Here the request that follows the pick in the old order fails once.
 */
import { neonConfig } from "@neondatabase/serverless";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatch, type FleetDeps, type MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns, runTenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { controlDeps, startRunWhenFree } from "./support.ts";

const TAG = `fd${Math.random().toString(36).slice(2, 6)}`;
const sent: MigrateMessage[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-dispatch-failure"),
  send: async (messages) => {
    sent.push(...messages);
  },
});

let runId = "";

async function queuedTenants(): Promise<string[]> {
  const rows = await deps()
    .db.select({ tenantId: runTenants.tenantId })
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), eq(runTenants.status, "queued")));
  return rows.map((r) => r.tenantId).sort();
}

const sentTenants = () => [...new Set(sent.filter((m) => m.runId === runId).map((m) => m.tenantId))].sort();

describe("fleet: a failing dispatch strands no tenant", () => {
  beforeAll(async () => {
    await Promise.all([1, 2, 3].map((n) => createTenant(deps(), { slug: `${TAG}-${n}`, region: "local" })));
    runId = (await startRunWhenFree(deps(), { concurrency: 1, maxFailures: 1000 })).id;
  }, 180_000);

  afterAll(async () => {
    neonConfig.fetchFunction = undefined;
    const [run] = runId ? await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId)) : [];
    if (run && run.status !== "completed" && run.status !== "cancelled") await cancelRun(deps(), runId);
  });

  it("every queued tenant has had its message sent, before and after a dispatch fails", async () => {
    expect(await queuedTenants()).toEqual(sentTenants());
    // The queued tenant finishes (its consumer has not dispatched yet): one slot is free.
    await deps()
      .db.update(runTenants)
      .set({ status: "done" })
      .where(and(eq(runTenants.runId, runId), eq(runTenants.status, "queued")));

    let failed = 0;
    neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
      const body = JSON.parse(String(init?.body ?? "{}")) as { query?: string; queries?: { query: string }[] };
      const texts = body.queries ? body.queries.map((q) => q.query) : [String(body.query)];
      // The re-send of stale queued tenants, which followed the pick in the old order.
      if (failed === 0 && texts.some((text) => /^update "run_tenants" set "queued_at"/i.test(text))) {
        failed += 1;
        return new Response("unavailable", { status: 503 });
      }
      return fetch(input, init);
    };
    try {
      await expect(dispatch(deps())).rejects.toThrow();
    } finally {
      neonConfig.fetchFunction = undefined;
    }
    expect(failed).toBe(1);
    // Nothing was picked by the dispatch that failed: no tenant is queued without its message.
    const queuedAfterFailure = await queuedTenants();
    expect(queuedAfterFailure.filter((id) => !sentTenants().includes(id))).toEqual([]);
    expect(queuedAfterFailure).toEqual([]);

    // The next dispatch queues the next tenant and sends its message.
    const { queued } = await dispatch(deps());
    expect(queued).toBe(1);
    const now = await queuedTenants();
    expect(now).toHaveLength(1);
    expect(sentTenants()).toContain(now[0]);
  });
});
