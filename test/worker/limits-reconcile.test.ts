/**
 * Reconcile (cron and admin API) against a control database of 10,000 tenants, under the
 * per-invocation limits (limits.ts): every KV record is written from an empty KV, paged across
 * invocations, none of them over a limit.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { ReconcileReport } from "../../src/control/tenants/reconcile.ts";
import { createHarness, cronTick, drainQueue, type Harness, invoke, LimitExceeded, peak } from "./limits.ts";
import { createScaleFleet, kvKeys, type ScaleFleet } from "./scale-fleet.ts";
import { adminToken, call } from "./support.ts";

const ADMIN = "http://admin.localhost";

const TAG = `r${Math.random().toString(36).slice(2, 6)}`;
const TENANTS = 10_000;
let fleet: ScaleFleet;

beforeAll(async () => {
  fleet = await createScaleFleet(TAG, TENANTS);
}, 600_000);

const harnessFor = (): Harness => createHarness({ ...env, CONTROL_DATABASE_URL: fleet.url });

describe("reconcile at 10,000 tenants", () => {
  it("writes every record from an empty KV without an invocation over a limit", async () => {
    const harness = harnessFor();
    try {
      await cronTick(harness);
      await drainQueue(harness);
    } catch (error) {
      if (error instanceof LimitExceeded) console.log("LIMIT", error.message, JSON.stringify(peak(harness)));
      throw error;
    }
    const usage = peak(harness);
    console.log("reconcile usage", JSON.stringify(usage));
    // 11,000 writes cannot fit one invocation: the pass took several, each within the limits.
    expect(usage.invocations).toBeGreaterThan(10);
    expect(usage.kvOperations).toBeLessThanOrEqual(1_000);
    expect(usage.subrequests).toBeLessThanOrEqual(1_000);
    expect((await kvKeys(`slug:sc${TAG}-`)).length).toBe(TENANTS);
    expect((await kvKeys("host:")).filter((k) => k.endsWith(".scale.localhost")).length).toBe(fleet.hosts);
  }, 600_000);

  it("repairs stale and orphan records, and reports the pass's progress", async () => {
    const slug = `sc${TAG}-00042`;
    const good = await env.TENANTS.get(`slug:${slug}`);
    expect(good).not.toBeNull();
    await env.TENANTS.put(`slug:${slug}`, JSON.stringify({ ...JSON.parse(good ?? "{}"), status: "suspended" }));
    await env.TENANTS.put(`host:orphan-${TAG}.scale.localhost`, good ?? "");
    await env.TENANTS.put(`slug:sc${TAG}-orphan`, good ?? "");
    const harness = harnessFor();
    const response = await invoke(harness, "POST /v1/reconcile", async (metered) =>
      call(`${ADMIN}/v1/reconcile`, { method: "POST", token: await adminToken(), env: metered }),
    );
    expect(response.status).toBe(200);
    const report = (await response.json()) as ReconcileReport;
    // The whole fleet's records were read: in one invocation or, when not done, through the queue.
    if (!report.done) await drainQueue(harness);
    else expect(report).toMatchObject({ stale: 1, orphan: 2, phase: "done" });
    expect(JSON.parse((await env.TENANTS.get(`slug:${slug}`)) ?? "{}").status).toBe("active");
    expect(await env.TENANTS.get(`host:orphan-${TAG}.scale.localhost`)).toBeNull();
    expect(await env.TENANTS.get(`slug:sc${TAG}-orphan`)).toBeNull();
    expect(peak(harness).kvOperations).toBeLessThanOrEqual(1_000);
    // `tenantry reconcile --status`: the pass's counts once every step ran.
    const progress = await invoke(harness, "GET /v1/reconcile", async (metered) =>
      call(`${ADMIN}/v1/reconcile`, { token: await adminToken("reader", "tenants:read"), env: metered }),
    );
    expect(progress.status).toBe(200);
    const counts = (await progress.json()) as ReconcileReport;
    expect(counts).toMatchObject({ pass: report.pass, phase: "done", done: true, stale: 1 });
    expect(counts.checked).toBe(TENANTS + fleet.hosts);
    // This file's two, and any other record KV held that is no tenant's of this fleet.
    expect(counts.orphan).toBeGreaterThanOrEqual(2);
  }, 600_000);

  it("a duplicated step message does nothing", async () => {
    const harness = harnessFor();
    const first = await invoke(harness, "POST /v1/reconcile", async (metered) =>
      call(`${ADMIN}/v1/reconcile`, { method: "POST", token: await adminToken(), env: metered }),
    );
    const report = (await first.json()) as ReconcileReport;
    // A message for a step that already ran (seq behind the pass) is acknowledged and dropped.
    harness.outbox.push({ body: { kind: "reconcile", pass: report.pass, seq: report.seq - 1 } });
    const before = harness.usages.length;
    await drainQueue(harness, { maxBatches: 1 });
    expect(harness.usages.length).toBe(before + 1);
    expect(harness.outbox).toEqual([]);
    expect(harness.usages.at(-1)?.kvOperations).toBe(0);
  }, 600_000);
});

describe("the limits harness", () => {
  it("fails an invocation at its 1,001st KV operation", async () => {
    const harness = harnessFor();
    const run = invoke(harness, "kv loop", async (metered) => {
      for (let i = 0; i < 1_001; i += 1) await metered.TENANTS.get(`slug:none-${i}`);
    });
    await expect(run).rejects.toMatchObject({ name: "LimitExceeded", limit: "kvOperations", count: 1_001 });
  });

  it("counts a bulk read of 100 keys as one KV operation", async () => {
    const harness = harnessFor();
    await invoke(harness, "bulk", async (metered) => {
      await metered.TENANTS.get(
        Array.from({ length: 100 }, (_, i) => `slug:none-${i}`),
        "text",
      );
    });
    expect(peak(harness).kvOperations).toBe(1);
  });

  it("fails a sendBatch of 101 messages and a 7th simultaneous connection", async () => {
    const harness = harnessFor();
    const batch = invoke(harness, "batch", (metered) =>
      metered.FLEET_QUEUE.sendBatch(Array.from({ length: 101 }, (_, i) => ({ body: { i } }))),
    );
    await expect(batch).rejects.toMatchObject({ limit: "batchMessages" });
    const parallel = invoke(harness, "parallel", (metered) =>
      Promise.all(Array.from({ length: 7 }, (_, i) => metered.TENANTS.get(`slug:none-${i}`))),
    );
    await expect(parallel).rejects.toMatchObject({ limit: "connections" });
  });
});
