/**
 * Key re-encryption against 10,000 tenants under the per-invocation limits (limits.ts), with a KV
 * write failure injected: `GET /v1/keys` (what `tenantry keys` prints) counts what KV really holds,
 * so the record the failed write left under the retired key shows, and a second `keys reencrypt`
 * pass writes it again.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { KeyStatus, ReencryptReport } from "../../src/control/keys.ts";
import { reconcileAll } from "../../src/control/tenants/reconcile.ts";
import { controlDepsFrom } from "../../src/worker/admin/deps.ts";
import { createHarness, type Harness, invoke, peak } from "./limits.ts";
import { createScaleFleet, kvKeys, type ScaleFleet } from "./scale-fleet.ts";
import { adminToken, call } from "./support.ts";

const ADMIN = "http://admin.localhost";
const TAG = `k${Math.random().toString(36).slice(2, 6)}`;
const TENANTS = 10_000;
let fleet: ScaleFleet;
let scaleEnv: Env;
let admin = "";

beforeAll(async () => {
  fleet = await createScaleFleet(TAG, TENANTS, { retired: true });
  scaleEnv = { ...env, CONTROL_DATABASE_URL: fleet.url };
  // KV as it stands before the rotation: every record under the retired key.
  await reconcileAll(controlDepsFrom(scaleEnv, "keys-scale-test"));
  admin = await adminToken("keys-scale");
}, 600_000);

async function adminCall<T>(harness: Harness, method: string, path: string): Promise<T> {
  return invoke(harness, `${method} ${path}`, async (metered) => {
    const response = await call(`${ADMIN}${path}`, { method, token: admin, env: metered });
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as T;
  });
}

/** A whole `tenantry keys reencrypt` pass, 500 tenants per request. */
async function reencryptPass(harness: Harness) {
  const totals = { reencrypted: 0, reprojected: 0, kvFailed: 0, calls: 0 };
  let after: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "500", ...(after ? { after } : {}) });
    const report: ReencryptReport = await adminCall(harness, "POST", `/v1/keys/reencrypt?${query}`);
    totals.reencrypted += report.reencrypted;
    totals.reprojected += report.reprojected;
    totals.kvFailed += report.kvFailed;
    totals.calls += 1;
    after = report.next;
  } while (after && totals.calls < 200);
  return totals;
}

/** Key ids of the connection strings KV holds for this fleet, read 100 keys at a time (unmetered). */
async function kvKids(): Promise<Record<string, number>> {
  const keys = [
    ...(await kvKeys(`slug:sc${TAG}-`)),
    ...(await kvKeys("host:")).filter((k) => k.startsWith(`host:sc${TAG}-`)),
  ];
  const kids: Record<string, number> = {};
  for (let start = 0; start < keys.length; start += 100) {
    const values = await env.TENANTS.get(keys.slice(start, start + 100), "text");
    for (const text of values.values()) {
      const record = JSON.parse(text ?? "{}") as { db?: string };
      const kid = record.db?.split(".")[1] ?? "?";
      kids[kid] = (kids[kid] ?? 0) + 1;
    }
  }
  return kids;
}

describe("key re-encryption at 10,000 tenants", () => {
  it("counts what KV holds after a failed KV write, and a second pass repairs it", async () => {
    const harness = createHarness(scaleEnv);
    const failing = `slug:sc${TAG}-00007`;
    harness.faults.failPut = (key) => key === failing;
    const first = await reencryptPass(harness);
    expect(first).toMatchObject({ reencrypted: 2 * TENANTS, kvFailed: 1 });
    expect(first.calls).toBeGreaterThanOrEqual(TENANTS / 500);

    // What KV really holds: one record left under the retired key.
    const held = await kvKids();
    expect(held).toEqual({ k1: TENANTS + fleet.hosts - 1, k0: 1 });
    harness.faults.failPut = undefined;
    const status: KeyStatus = await adminCall(harness, "GET", "/v1/keys");
    expect(status.kv).toEqual(held);
    expect(status).toMatchObject({ kvBehind: 1, stale: 1 });
    expect(status.secrets.k0 ?? 0).toBe(0);

    const second = await reencryptPass(harness);
    expect(second).toMatchObject({ reencrypted: 0, reprojected: 1, kvFailed: 0 });
    const after: KeyStatus = await adminCall(harness, "GET", "/v1/keys");
    expect(after).toMatchObject({ kvBehind: 0, stale: 0, kv: { k1: TENANTS + fleet.hosts } });
    expect(await kvKids()).toEqual({ k1: TENANTS + fleet.hosts });

    const usage = peak(harness);
    console.log("keys usage", JSON.stringify(usage));
    expect(usage.kvOperations).toBeLessThanOrEqual(1_000);
    expect(usage.subrequests).toBeLessThanOrEqual(1_000);
  }, 900_000);
});
