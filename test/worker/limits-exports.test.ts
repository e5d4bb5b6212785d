/**
 * The nightly export dispatch against a control database of 10,000 tenants, under the
 * per-invocation limits (limits.ts): one export row and one queue message per active tenant, sent
 * 100 per sendBatch, the cron's pass paged across invocations through the queue, each within
 * every limit; a step delivered twice, or the cron delivered twice, records nothing twice.
 */
import { env } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { beforeAll, describe, expect, it } from "vitest";
import { scheduleNightlyExports } from "../../src/control/export/nightly.ts";
import { exportDepsFrom, NIGHTLY_EXPORT_CRON } from "../../src/worker/fleet/handlers.ts";
import { createLogger } from "../../src/worker/http/log.ts";
import { createHarness, cronTick, drainQueue, peak } from "./limits.ts";
import { createScaleFleet, type ScaleFleet } from "./scale-fleet.ts";

const TAG = `e${Math.random().toString(36).slice(2, 6)}`;
const TENANTS = 10_000;
let fleet: ScaleFleet;

beforeAll(async () => {
  fleet = await createScaleFleet(TAG, TENANTS);
}, 600_000);

describe("nightly exports at 10,000 tenants", () => {
  it("queues one export per tenant without an invocation over a limit", async () => {
    const harness = createHarness({ ...env, CONTROL_DATABASE_URL: fleet.url });
    const night = Date.UTC(2026, 11, 1, 3);
    await cronTick(harness, NIGHTLY_EXPORT_CRON, night);
    const isStep = (body: unknown) => (body as { kind?: string }).kind === "exports:nightly";
    const firstStep = harness.outbox.find((m) => isStep(m.body));
    expect(firstStep).toBeDefined();
    // The first step's message delivered twice: the second finds the pass moved on.
    harness.outbox.push({ body: firstStep?.body });
    await drainQueue(harness, { only: isStep, batchSize: 1 });
    const messages = harness.outbox.map((m) => m.body as { kind: string; exportId: string });
    expect(messages.filter((m) => m.kind === "export")).toHaveLength(TENANTS);
    const rows = await neon(fleet.url).query(
      "SELECT count(DISTINCT tenant_id)::int AS tenants, count(*)::int AS n FROM exports WHERE kind = 'nightly'",
    );
    expect(rows[0]).toEqual({ tenants: TENANTS, n: TENANTS });
    // The cron delivered twice for the same night starts no second pass.
    await cronTick(harness, NIGHTLY_EXPORT_CRON, night);
    expect(harness.outbox.filter((m) => isStep(m.body))).toEqual([]);
    expect(harness.outbox).toHaveLength(TENANTS);
    const usage = peak(harness);
    // 10 steps of 1,000 tenants, plus the duplicate's no-op invocation.
    expect(usage.invocations).toBeGreaterThanOrEqual(10);
    console.log("nightly exports usage", JSON.stringify(usage));
    expect(usage.kvOperations).toBeLessThanOrEqual(1_000);
    expect(usage.subrequests).toBeLessThanOrEqual(1_000);
    expect(usage.connections).toBeLessThanOrEqual(6);
    expect(usage.batchMessages).toBe(100);
  }, 600_000);

  it("one step delivered twice at once records each tenant's export once", async () => {
    const sent: unknown[] = [];
    const deps = {
      ...exportDepsFrom({ ...env, CONTROL_DATABASE_URL: fleet.url }, "test:nightly", createLogger("error")),
      sendExport: async (messages: readonly unknown[]) => {
        sent.push(...messages);
      },
    };
    const first = await scheduleNightlyExports(deps, { scheduledTime: Date.UTC(2026, 11, 2, 3) });
    expect(first).toMatchObject({ seq: 1, queued: 1_000, done: false });
    const [a, b] = await Promise.all([
      scheduleNightlyExports(deps, { from: first ?? { pass: "", seq: 0 } }),
      scheduleNightlyExports(deps, { from: first ?? { pass: "", seq: 0 } }),
    ]);
    // One of them committed the step; the other recorded nothing the first had not.
    expect([a, b].filter((r) => r !== null)).toHaveLength(1);
    const rows = await neon(fleet.url).query(
      `SELECT count(*)::int AS n, count(DISTINCT tenant_id)::int AS tenants FROM exports
       WHERE kind = 'nightly' AND created_by = 'test:nightly'`,
    );
    expect(rows[0]).toEqual({ n: 2_000, tenants: 2_000 });
    expect(sent).toHaveLength(2_000);
  }, 600_000);
});
