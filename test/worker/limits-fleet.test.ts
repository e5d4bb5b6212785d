/**
 * Fleet runs against a control database of 10,000 tenants, under the per-invocation limits
 * (limits.ts): starting a run (10,000 run rows written), the cron's dispatch moving it to its next
 * phase, and the re-send of messages lost long ago, each one invocation within every limit, with
 * at most 100 messages per sendBatch.
 */
import { env } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { beforeAll, describe, expect, it } from "vitest";
import type { MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { createHarness, cronTick, type Harness, invoke, peak } from "./limits.ts";
import { createScaleFleet, type ScaleFleet } from "./scale-fleet.ts";
import { adminToken, call } from "./support.ts";

const ADMIN = "http://admin.localhost";
const TAG = `f${Math.random().toString(36).slice(2, 6)}`;
const TENANTS = 10_000;
let fleet: ScaleFleet;
let harness: Harness;

beforeAll(async () => {
  fleet = await createScaleFleet(TAG, TENANTS);
  harness = createHarness({ ...env, CONTROL_DATABASE_URL: fleet.url });
}, 600_000);

/** The migrate messages sent so far (the cron's reconcile steps go to the same outbox). */
function migrateMessages(): MigrateMessage[] {
  return harness.outbox.map((m) => m.body as MigrateMessage).filter((b) => b.kind === "migrate");
}

describe("fleet runs at 10,000 tenants", () => {
  let runId = "";

  it("starts a run over every tenant in one invocation within the limits", async () => {
    const token = await adminToken("fleet-scale");
    const body = { canary: 100, wave: 2_000, concurrency: 250, maxFailures: 10_000 };
    const response = await invoke(harness, "POST /v1/migrations/runs", (metered) =>
      call(`${ADMIN}/v1/migrations/runs`, {
        method: "POST",
        token,
        env: metered,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
    );
    expect(response.status, await response.clone().text()).toBe(202);
    const run = (await response.json()) as { id: string; phases: number; total: number };
    runId = run.id;
    expect(run).toMatchObject({ phases: 6, total: TENANTS });
    const sql = neon(fleet.url);
    const rows = await sql.query("SELECT count(*)::int AS n FROM run_tenants WHERE run_id = $1", [runId]);
    expect(rows[0]?.n).toBe(TENANTS);
    // The canary phase (100 tenants) is queued at once.
    expect(migrateMessages()).toHaveLength(100);
    console.log("fleet start usage", JSON.stringify(harness.usages.at(-1)));
  }, 600_000);

  it("the cron advances the run to its next wave and re-sends lost messages", async () => {
    const sql = neon(fleet.url);
    await sql.query("UPDATE run_tenants SET status = 'done' WHERE run_id = $1 AND phase = 0", [runId]);
    await cronTick(harness);
    // Phase 1 (2,000 tenants) fills the run's concurrency: 250 more messages, in batches of 100.
    const afterAdvance = migrateMessages();
    expect(afterAdvance).toHaveLength(350);
    expect(new Set(afterAdvance.map((m) => m.tenantId)).size).toBe(350);
    // Every queued message lost (queued long ago, never started): the next tick sends them again.
    await sql.query(
      "UPDATE run_tenants SET queued_at = now() - interval '1 hour' WHERE run_id = $1 AND status = 'queued'",
      [runId],
    );
    await cronTick(harness);
    expect(migrateMessages()).toHaveLength(600);
    const usage = peak(harness);
    console.log("fleet usage", JSON.stringify(usage));
    expect(usage.invocations).toBe(3);
    expect(usage.kvOperations).toBeLessThanOrEqual(1_000);
    expect(usage.subrequests).toBeLessThanOrEqual(1_000);
    expect(usage.connections).toBeLessThanOrEqual(6);
    expect(usage.batchMessages).toBe(100);
  }, 600_000);
});
