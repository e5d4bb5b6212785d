/**
 * Custom domains against the fake Cloudflare API through the real client, with the control plane on
 * embedded Postgres: creation with DNS instructions, activation by the cron pass, validation errors
 * and alerts, quota, retries, a hostname deleted on Cloudflare's side, removal retried by the cron,
 * reserved names, and the cron's per-invocation budget over a 10,000-domain fleet.
 */
import { randomBytes } from "node:crypto";
import { neon } from "@neondatabase/serverless";
import { eq, isNotNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCloudflareClient } from "../../../src/control/domains/cloudflare.ts";
import { hostnameOrphans } from "../../../src/control/domains/orphans.ts";
import { DOMAIN_POLL, pollDomains } from "../../../src/control/domains/poll.ts";
import { type PurgeBucket, purgeTenantExports } from "../../../src/control/export/purge.ts";
import * as schema from "../../../src/control/schema.ts";
import { createTenant } from "../../../src/control/tenants/create.ts";
import type { ControlDeps, KvStore } from "../../../src/control/tenants/deps.ts";
import { addDomain, removeDomain, verifyDomain } from "../../../src/control/tenants/domains.ts";
import { deleteTenant } from "../../../src/control/tenants/lifecycle.ts";
import type { TenantView } from "../../../src/control/tenants/rows.ts";
import { type FakeCloudflare, startFakeCloudflareApi } from "../../../src/dev/fake-cloudflare/server.ts";
import { ensureControlDatabase, memoryKv, seedDeps } from "../../../src/dev/seed.ts";
import { generateKey } from "../../../src/shared/crypto/secrets.ts";
import { AppError } from "../../../src/shared/errors.ts";
import { postgresUrl, superuser, useGatewayForNeon } from "../support.ts";

const suffix = randomBytes(3).toString("hex");
const controlName = `ctl_domains_${suffix}`;
let fake: FakeCloudflare;
let deps: ControlDeps;
let kv: ReturnType<typeof memoryKv>;
const alerts: Record<string, unknown>[] = [];

const detail = (tenant: TenantView, host: string) => tenant.domainDetails.find((d) => d.hostname === host);

async function rejected(work: Promise<unknown>): Promise<AppError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

/**
 * The delete's export step (see export/purge.ts) over a bucket with nothing in it: these tenants
 * never export, and R2 is not what this file is about (test/worker/export-gdpr.test.ts is).
 */
const emptyBucket: PurgeBucket = {
  createMultipartUpload: () => Promise.reject(new Error("no uploads here")),
  put: () => Promise.reject(new Error("no uploads here")),
  head: async () => null,
  delete: async () => undefined,
  list: async () => ({ objects: [], truncated: false }),
};
const deleteSteps = (slug: string) => ({
  purgeExports: (tenantId: string, keep: string | undefined) =>
    purgeTenantExports({ ...deps, bucket: emptyBucket }, tenantId, slug, keep),
});

beforeAll(async () => {
  useGatewayForNeon();
  const controlUrl = await ensureControlDatabase(postgresUrl(), controlName);
  fake = await startFakeCloudflareApi({ activateAfterMs: 60_000 });
  kv = memoryKv();
  deps = {
    ...seedDeps(postgresUrl(), controlUrl, `k1:${generateKey()}`, kv, "test"),
    platformDomain: "tenantry.localhost",
    customHostnames: createCloudflareClient({
      apiToken: fake.apiToken,
      zoneId: "zone-test",
      baseUrl: fake.url,
      sleep: async () => undefined,
    }),
    alert: async (payload) => {
      alerts.push(payload);
    },
  };
  await createTenant(deps, { slug: `dom-${suffix}`, region: "local" });
});

afterAll(async () => {
  await fake?.close();
  await superuser(async (client) => {
    const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [
      `tenant_dom_${suffix}%`,
    ]);
    for (const row of [...rows, { datname: controlName }])
      await client.query(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
  });
});

const slug = () => `dom-${suffix}`;

describe("custom hostnames", () => {
  it("adds a domain pending with DNS records, serves it only once the cron sees it active", async () => {
    const host = `shop-${suffix}.example.com`;
    const tenant = await addDomain(deps, slug(), host);
    const domain = detail(tenant, host);
    expect(domain).toMatchObject({ status: "pending", customHostname: true, sslStatus: "pending_validation" });
    expect(domain?.dns?.records).toEqual(
      expect.arrayContaining([
        { type: "CNAME", name: host, value: "customers.tenantry.localhost" },
        expect.objectContaining({ type: "TXT", name: `_cf-custom-hostname.${host}` }),
      ]),
    );
    expect(fake.hostnames()).toContain(host);
    expect(kv.entries.has(`host:${host}`)).toBe(false);

    await pollDomains(deps);
    expect(kv.entries.has(`host:${host}`)).toBe(false);
    fake.setActivateAfter(0);
    const report = await pollDomains(deps);
    expect(report.activated).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(kv.entries.get(`host:${host}`) ?? "{}")).toMatchObject({ slug: slug(), status: "active" });
    fake.setActivateAfter(60_000);
  });

  it("keeps a .invalid hostname pending with its validation error, and alerts once", async () => {
    const host = `broken-${suffix}.invalid`;
    await addDomain(deps, slug(), host);
    const before = alerts.length;
    await pollDomains(deps);
    await pollDomains(deps);
    const tenant = await verifyDomain(deps, slug(), host);
    expect(detail(tenant, host)?.status).toBe("pending");
    expect(detail(tenant, host)?.validationErrors.length).toBeGreaterThan(0);
    await pollDomains(deps);
    const mine = alerts.slice(before).filter((a) => a.domain === host);
    expect(mine).toEqual([expect.objectContaining({ event: "domain_validation_failed", tenant: slug() })]);
    expect(kv.entries.has(`host:${host}`)).toBe(false);
  });

  it("refuses a new domain with 409 and the numbers when the quota is full", async () => {
    const used = fake.hostnames().length;
    fake.setQuota(used);
    const error = await rejected(addDomain(deps, slug(), `full-${suffix}.example.com`));
    expect(error).toMatchObject({ status: 409, code: "quota_exceeded" });
    expect(error.extras.quota).toEqual({ allocated: used, used });
    expect(fake.hostnames()).not.toContain(`full-${suffix}.example.com`);
    fake.setQuota(100_000);
  });

  it("retries 429 and 5xx answers, and gives up with cloudflare_unavailable", async () => {
    const posts = () => fake.calls.filter((c) => c.startsWith("POST")).length;
    const start = posts();
    fake.failNext("POST /client/v4", 429, 1);
    fake.failNext("POST /client/v4", 503, 1);
    const host = `retry-${suffix}.example.com`;
    const tenant = await addDomain(deps, slug(), host);
    expect(detail(tenant, host)?.customHostname).toBe(true);
    expect(posts() - start).toBe(3);

    fake.failNext("POST /client/v4", 502, 4);
    const down = `down-${suffix}.example.com`;
    const error = await rejected(addDomain(deps, slug(), down));
    expect(error).toMatchObject({ status: 502, code: "cloudflare_unavailable" });
    // Kept pending without an id: the cron creates it once Cloudflare answers.
    const [row] = await deps.db.select().from(schema.domains).where(eq(schema.domains.hostname, down));
    expect(row).toMatchObject({ status: "pending", cfId: null });
    for (let i = 0; i < 5 && !fake.hostnames().includes(down); i++) await pollDomains(deps);
    expect(fake.hostnames()).toContain(down);
  });

  it("turns a hostname deleted on Cloudflare's side deleted: not served, alerted", async () => {
    const host = `gone-${suffix}.example.com`;
    await addDomain(deps, slug(), host);
    fake.setActivateAfter(0);
    for (let i = 0; i < 5 && !kv.entries.has(`host:${host}`); i++) await pollDomains(deps);
    expect(kv.entries.has(`host:${host}`)).toBe(true);
    fake.drop(host);
    const before = alerts.length;
    for (let i = 0; i < 5 && kv.entries.has(`host:${host}`); i++) await pollDomains(deps);
    fake.setActivateAfter(60_000);
    expect(kv.entries.has(`host:${host}`)).toBe(false);
    const [row] = await deps.db.select().from(schema.domains).where(eq(schema.domains.hostname, host));
    expect(row?.status).toBe("deleted");
    expect(alerts.slice(before)).toContainEqual(expect.objectContaining({ event: "domain_deleted", domain: host }));
    // `domains verify` gives it a new custom hostname, pending again.
    expect(detail(await verifyDomain(deps, slug(), host), host)).toMatchObject({ status: "pending" });
    expect(fake.hostnames()).toContain(host);
  });

  it("retries a removal Cloudflare refused from the cron, leaving nothing on either side", async () => {
    const host = `bye-${suffix}.example.com`;
    await addDomain(deps, slug(), host);
    fake.failNext("DELETE /client/v4", 500, 4);
    const tenant = await removeDomain(deps, slug(), host);
    expect(tenant.domains).not.toContain(host);
    expect(detail(tenant, host)?.status).toBe("removing");
    expect(fake.hostnames()).toContain(host);
    expect(kv.entries.has(`host:${host}`)).toBe(false);
    for (let i = 0; i < 5 && fake.hostnames().includes(host); i++) await pollDomains(deps);
    expect(fake.hostnames()).not.toContain(host);
    expect(await deps.db.select().from(schema.domains).where(eq(schema.domains.hostname, host))).toEqual([]);
  });

  it("refuses reserved names with 422", async () => {
    for (const host of ["admin.localhost", "tenantry.localhost", "acme.tenantry.localhost"]) {
      expect(await rejected(addDomain(deps, slug(), host))).toMatchObject({ status: 422, code: "validation_failed" });
    }
    for (const reserved of ["www", "admin", "api"]) {
      expect(await rejected(createTenant(deps, { slug: reserved, region: "local" }))).toMatchObject({
        status: 422,
        code: "validation_failed",
      });
    }
  });

  it("removes a deleted tenant's custom hostnames", async () => {
    const other = `dom2-${suffix}`;
    await createTenant(deps, { slug: other, region: "local" });
    const host = `del-${suffix}.example.com`;
    await addDomain(deps, other, host);
    expect(fake.hostnames()).toContain(host);
    await deleteTenant(deps, other, other, deleteSteps(other));
    expect(fake.hostnames()).not.toContain(host);
  });

  it("creates the custom hostnames of a new tenant's domains at once", async () => {
    const other = `dom3-${suffix}`;
    const host = `new-${suffix}.example.com`;
    const tenant = await createTenant(deps, { slug: other, region: "local", domains: [host] });
    expect(fake.hostnames()).toContain(host);
    expect(detail(tenant, host)).toMatchObject({ status: "pending", customHostname: true });
    expect(detail(tenant, host)?.dns?.records[0]).toEqual({ type: "CNAME", name: host, value: expect.any(String) });
    expect(await kv.get(`host:${host}`, "text")).toBeNull();
    await deleteTenant(deps, other, other, deleteSteps(other));
    expect(fake.hostnames()).not.toContain(host);
  });
});

describe("reconcile's custom hostname report", () => {
  it("names custom hostnames without a domain and domains without a custom hostname", async () => {
    const stray = fake.adopt([`stray-${suffix}.example.com`]);
    const host = `lost-${suffix}.example.com`;
    await addDomain(deps, slug(), host);
    fake.drop(host);
    const report = await hostnameOrphans(deps);
    expect(stray).toHaveLength(1);
    expect(report?.complete).toBe(true);
    expect(report?.hostnamesWithoutDomain).toContain(`stray-${suffix}.example.com`);
    expect(report?.domainsWithoutHostname).toContain(host);
    expect(report?.hostnamesWithoutDomain).not.toContain(`shop-${suffix}.example.com`);
  }, 60_000);
});

describe("the cron's domain pass over 10,000 pending domains", () => {
  it("stays within one invocation's limits and pages across invocations", async () => {
    const [tenant] = await deps.db.select().from(schema.tenants).where(eq(schema.tenants.slug, slug()));
    const hosts = Array.from({ length: 10_000 }, (_, i) => `fleet-${i}-${suffix}.example.com`);
    const ids = fake.adopt(hosts);
    const raw = neon(new URL(`/${controlName}`, postgresUrl()).toString());
    await raw.query(
      "INSERT INTO domains (hostname, tenant_id, status, cf_id) SELECT unnest($1::text[]), $2, 'pending', unnest($3::text[])",
      [hosts, tenant?.id, ids],
    );
    fake.setActivateAfter(0);
    let queries = 0;
    let kvOps = 0;
    const counting =
      <A extends unknown[], R>(op: (...args: A) => R) =>
      (...args: A): R => {
        kvOps += 1;
        return op(...args);
      };
    const countingKv: KvStore = {
      get: counting(kv.get) as KvStore["get"],
      put: counting(kv.put),
      delete: counting(kv.delete),
      list: counting(kv.list),
    };
    const db = drizzle({
      client: neon(new URL(`/${controlName}`, postgresUrl()).toString()),
      schema,
      logger: { logQuery: () => void queries++ },
    });
    const counted: ControlDeps = { ...deps, db, kv: countingKv };
    const checkedFleet = async () =>
      Number(
        (
          await deps.db
            .select({ n: sql<number>`count(*)` })
            .from(schema.domains)
            .where(sql`${schema.domains.hostname} LIKE 'fleet-%' AND ${isNotNull(schema.domains.checkedAt)}`)
        )[0]?.n,
      );

    let total = 0;
    let previous = 0;
    for (let invocation = 1; invocation <= 2; invocation++) {
      const calls = fake.calls.length;
      queries = 0;
      kvOps = 0;
      const report = await pollDomains(counted);
      const cloudflare = fake.calls.length - calls;
      expect(report.checked).toBeGreaterThan(0);
      // One invocation: ≤ 1,000 KV operations, ≤ 1,000 subrequests (Cloudflare + control database).
      expect(kvOps).toBeLessThanOrEqual(1_000);
      expect(cloudflare + queries).toBeLessThanOrEqual(1_000);
      expect(kvOps).toBeLessThanOrEqual(report.checked);
      // The next invocation takes the next page: never-checked pending domains first, at least half
      // a page of them (the other half may recheck the ones that turned active).
      total += report.checked;
      const fleet = await checkedFleet();
      expect(fleet - previous).toBeGreaterThanOrEqual(DOMAIN_POLL.batch / 2);
      expect(fleet).toBeLessThanOrEqual(total);
      previous = fleet;
    }
    fake.setActivateAfter(60_000);
  }, 120_000);
});
