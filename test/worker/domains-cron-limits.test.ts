/**
 * The cron's domain pass over 10,000 pending custom domains, run as the real `scheduled` handler in
 * workerd with its KV binding and the outgoing `fetch` (Cloudflare API, control database over the
 * Neon HTTP driver, alert webhook) wrapped by counters: each invocation stays within one
 * invocation's limits (1,000 KV operations; 1,000 subrequests, the old Paid default and ten times
 * stricter than today's) and takes the next page, so the fleet is covered across invocations.
 * The domains belong to acme, point at a second fake Cloudflare API (global-setup.ts) where they
 * never turn active, and are deleted afterwards.
 */
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import worker from "../../src/worker/index.ts";
import { FLEET_HOSTNAMES, fleetHostname } from "./fleet-hostnames.ts";
import { controlDeps, tenantRow } from "./support.ts";

const LIMITS = { kvOperations: 1_000, subrequests: 1_000 };

interface Usage {
  kvOperations: number;
  subrequests: number;
}

/** KV with every operation counted (each is also a subrequest). */
function countedKv(kv: KVNamespace, usage: Usage): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        usage.kvOperations += 1;
        usage.subrequests += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** One cron tick with Cloudflare configured, metered. */
async function meteredTick(): Promise<Usage> {
  const usage: Usage = { kvOperations: 0, subrequests: 0 };
  const metered: Env = {
    ...env,
    CLOUDFLARE_ZONE_ID: "zone-fleet",
    CLOUDFLARE_API_URL: inject("fleetCloudflareUrl"),
    CLOUDFLARE_API_TOKEN: inject("cloudflareToken"),
    TENANTS: countedKv(env.TENANTS, usage),
  };
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    usage.subrequests += 1;
    return realFetch(input, init);
  }) as typeof fetch;
  try {
    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() }),
      metered,
      ctx,
    );
    await waitOnExecutionContext(ctx);
  } finally {
    globalThis.fetch = realFetch;
  }
  return usage;
}

const fleetChecked = async (): Promise<number> => {
  const rows = await controlDeps("test").db.execute<{ n: string }>(
    sql`SELECT count(*) AS n FROM domains WHERE hostname LIKE 'fleet-%.dm-limits.example.com' AND checked_at IS NOT NULL`,
  );
  return Number(rows.rows[0]?.n);
};

beforeAll(async () => {
  const acme = await tenantRow("acme");
  const hosts = Array.from({ length: FLEET_HOSTNAMES }, (_, i) => fleetHostname(i));
  const ids = inject("fleetHostnameIds");
  expect(ids).toHaveLength(FLEET_HOSTNAMES);
  controlDeps("test"); // points the Neon driver at the gateway
  // Two array parameters, not 20,000 (drizzle's sql`` would expand an array into a row).
  await neon(inject("controlUrl")).query(
    "INSERT INTO domains (hostname, tenant_id, status, cf_id) SELECT unnest($1::text[]), $2, 'pending', unnest($3::text[])",
    [hosts, acme.id, ids],
  );
}, 60_000);

afterAll(async () => {
  await controlDeps("test").db.execute(sql`DELETE FROM domains WHERE hostname LIKE 'fleet-%.dm-limits.example.com'`);
});

describe("the cron's domain pass over 10,000 pending domains", () => {
  it("stays within one invocation's KV and subrequest limits and pages across invocations", async () => {
    let previous = 0;
    for (let invocation = 1; invocation <= 3; invocation++) {
      const usage = await meteredTick();
      expect(usage.kvOperations).toBeLessThanOrEqual(LIMITS.kvOperations);
      expect(usage.subrequests).toBeLessThanOrEqual(LIMITS.subrequests);
      // It did reach Cloudflare and the control database through the metered fetch.
      expect(usage.subrequests).toBeGreaterThan(100);
      const checked = await fleetChecked();
      expect(checked).toBeGreaterThan(previous);
      expect(checked).toBeLessThan(FLEET_HOSTNAMES);
      previous = checked;
    }
  }, 120_000);
});
