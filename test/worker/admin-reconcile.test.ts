/**
 * POST /v1/reconcile repairs drift between the control database (source of truth) and the KV
 * projection the edge reads: a missing record is written back, a stale one rewritten, an orphan
 * (a key no tenant should have) deleted; the report counts each, and the edge then serves right.
 *
 * Each test file has its own KV namespace, but the control database is shared with the other test
 * files, which create and change tenants concurrently. So every drift check starts from a reconcile
 * (KV = control database), makes its drift, and reconciles again; if another file changed a tenant
 * in between, the counts include that too, and the check is simply repeated.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { TenantRecord } from "../../src/shared/tenant-record.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import { purgeTenantCache } from "../../src/worker/edge/resolve.ts";
import { call, json, seedKv, tenant } from "./support.ts";

interface Report {
  checked: number;
  missing: number;
  stale: number;
  orphan: number;
  ok: number;
}

const ADMIN = "http://admin.localhost";
let admin = "";

async function reconcile(): Promise<Report> {
  const response = await call(`${ADMIN}/v1/reconcile`, { method: "POST", token: admin });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  const report = JSON.parse(text) as Report;
  // Every desired record is exactly one of ok, missing or stale.
  expect(report.checked).toBe(report.ok + report.missing + report.stale);
  return report;
}

/**
 * Reconciles (KV matches the control database), applies `drift`, reconciles again; returns the
 * second report once its drift counts are exactly `expected`, retrying when a concurrent change by
 * another test file added to them (at most 5 times, then the last report is returned).
 */
async function repair(drift: () => Promise<void>, expected: Pick<Report, "missing" | "stale" | "orphan">) {
  let report: Report | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    await reconcile();
    await drift();
    report = await reconcile();
    if (report.missing === expected.missing && report.stale === expected.stale && report.orphan === expected.orphan)
      break;
  }
  return report as Report;
}

async function put(key: string, value: string | object): Promise<void> {
  await env.TENANTS.put(key, typeof value === "string" ? value : JSON.stringify(value));
  purgeTenantCache();
}

async function remove(key: string): Promise<void> {
  await env.TENANTS.delete(key);
  purgeTenantCache();
}

async function record(key: string): Promise<TenantRecord | null> {
  const text = await env.TENANTS.get(key);
  return text === null ? null : (JSON.parse(text) as TenantRecord);
}

async function statusAt(host: string): Promise<{ status: number; code?: string; skus?: string[] }> {
  const response = await call(`http://${host}/api/products`);
  const body = (await response.json()) as { code?: string; items?: { sku: string }[] };
  return { status: response.status, code: body.code, skus: body.items?.map((p) => p.sku) };
}

async function createTenant(slug: string, domains: string[]): Promise<void> {
  const response = await call(`${ADMIN}/v1/tenants`, { ...json({ slug, region: "local", domains }), token: admin });
  expect(response.status, await response.clone().text()).toBe(201);
}

const A = "shop.rc-alpha.localhost";
const B = "shop.rc-beta.localhost";

beforeAll(async () => {
  await seedKv();
  admin = await mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub: "reconcile-ops",
    scope: ALL_ADMIN_SCOPES,
  });
  await createTenant("rc-alpha", [A]);
  await createTenant("rc-beta", [B]);
});

describe("reconcile repairs KV drift", () => {
  it("a deleted record is written back (missing=1) and the host is served again", async () => {
    const before = await record(`host:${A}`);
    expect(before).toMatchObject({ slug: "rc-alpha", status: "active" });
    const report = await repair(
      async () => {
        await remove(`host:${A}`);
        expect(await statusAt(A)).toMatchObject({ status: 404, code: "tenant_not_found" });
      },
      { missing: 1, stale: 0, orphan: 0 },
    );
    expect(report).toMatchObject({ missing: 1, stale: 0, orphan: 0 });
    expect(await record(`host:${A}`)).toEqual(before);
    expect(await statusAt(A)).toMatchObject({ status: 200, skus: [] });
  });

  it("a deleted slug record is written back too", async () => {
    const report = await repair(() => remove("slug:rc-alpha"), { missing: 1, stale: 0, orphan: 0 });
    expect(report).toMatchObject({ missing: 1, stale: 0, orphan: 0 });
    expect(await record("slug:rc-alpha")).toMatchObject({ slug: "rc-alpha", status: "active" });
    expect(await statusAt("rc-alpha.tenantry.localhost")).toMatchObject({ status: 200 });
  });

  it("a stale record (suspended in KV, active in the control database) is rewritten (stale=1)", async () => {
    const good = await record(`host:${B}`);
    expect(good).toMatchObject({ slug: "rc-beta", status: "active" });
    const report = await repair(
      async () => {
        await put(`host:${B}`, { ...good, status: "suspended" });
        expect(await statusAt(B)).toMatchObject({ status: 403, code: "tenant_suspended" });
      },
      { missing: 0, stale: 1, orphan: 0 },
    );
    expect(report).toMatchObject({ missing: 0, stale: 1, orphan: 0 });
    expect(await record(`host:${B}`)).toEqual(good);
    expect(await statusAt(B)).toMatchObject({ status: 200 });
  });

  it("a stale record the other way (active in KV, suspended in the control database) is rewritten", async () => {
    const suspended = await call(`${ADMIN}/v1/tenants/rc-beta/suspend`, { method: "POST", token: admin });
    expect(suspended.status).toBe(200);
    const wanted = await record(`host:${B}`);
    expect(wanted).toMatchObject({ status: "suspended" });
    const report = await repair(
      async () => {
        await put(`host:${B}`, { ...wanted, status: "active" });
        expect(await statusAt(B)).toMatchObject({ status: 200 });
      },
      { missing: 0, stale: 1, orphan: 0 },
    );
    expect(report).toMatchObject({ missing: 0, stale: 1, orphan: 0 });
    expect(await record(`host:${B}`)).toEqual(wanted);
    expect(await statusAt(B)).toMatchObject({ status: 403, code: "tenant_suspended" });
    expect((await call(`${ADMIN}/v1/tenants/rc-beta/resume`, { method: "POST", token: admin })).status).toBe(200);
    expect(await statusAt(B)).toMatchObject({ status: 200 });
  });

  it("records that are not valid tenant records count as stale and are rewritten", async () => {
    const good = await record(`host:${A}`);
    const report = await repair(
      async () => {
        await put(`host:${A}`, "{not json");
        await put("slug:rc-alpha", { ...good, id: "ten_00000000000000000000" });
        expect(await statusAt(A)).toMatchObject({ status: 404 });
      },
      { missing: 0, stale: 2, orphan: 0 },
    );
    expect(report).toMatchObject({ missing: 0, stale: 2, orphan: 0 });
    expect(await record(`host:${A}`)).toEqual(good);
    expect(await record("slug:rc-alpha")).toEqual(good);
    expect(await statusAt(A)).toMatchObject({ status: 200 });
  });

  it("an orphan (host:ghost.localhost, owned by no tenant) is deleted (orphan=1)", async () => {
    const report = await repair(
      async () => {
        // A copy of acme's record under a host acme never owned: the edge would serve acme's data there.
        await put(
          "host:ghost.localhost",
          JSON.parse(tenant("acme").kv.find((e) => e.key === "slug:acme")?.value ?? "{}"),
        );
        expect(await statusAt("ghost.localhost")).toMatchObject({ status: 200 });
      },
      { missing: 0, stale: 0, orphan: 1 },
    );
    expect(report).toMatchObject({ missing: 0, stale: 0, orphan: 1 });
    expect(await env.TENANTS.get("host:ghost.localhost")).toBeNull();
    expect(await statusAt("ghost.localhost")).toMatchObject({ status: 404, code: "tenant_not_found" });
    expect((await statusAt("acme.localhost")).status).toBe(200);
  });

  it("a deleted tenant's leftover records are orphans and are deleted", async () => {
    await createTenant("rc-gone", ["shop.rc-gone.localhost"]);
    const leftovers = [
      ["host:shop.rc-gone.localhost", await env.TENANTS.get("host:shop.rc-gone.localhost")],
      ["slug:rc-gone", await env.TENANTS.get("slug:rc-gone")],
    ] as const;
    const deleted = await call(`${ADMIN}/v1/tenants/rc-gone?confirm=rc-gone`, { method: "DELETE", token: admin });
    expect(deleted.status).toBe(200);
    const report = await repair(
      async () => {
        for (const [key, value] of leftovers) await put(key, value ?? "");
      },
      { missing: 0, stale: 0, orphan: 2 },
    );
    expect(report).toMatchObject({ missing: 0, stale: 0, orphan: 2 });
    for (const [key] of leftovers) expect(await env.TENANTS.get(key)).toBeNull();
    expect(await statusAt("shop.rc-gone.localhost")).toMatchObject({ status: 404, code: "tenant_not_found" });
  });

  it("repairs all three kinds in one run, and the edge then serves each host correctly", async () => {
    const a = await record(`host:${A}`);
    const b = await record(`host:${B}`);
    const report = await repair(
      async () => {
        await remove(`host:${A}`);
        await put(`host:${B}`, { ...b, status: "suspended" });
        await put("host:ghost.localhost", { ...b });
      },
      { missing: 1, stale: 1, orphan: 1 },
    );
    expect(report).toMatchObject({ missing: 1, stale: 1, orphan: 1 });
    expect(await record(`host:${A}`)).toEqual(a);
    expect(await record(`host:${B}`)).toEqual(b);
    expect(await env.TENANTS.get("host:ghost.localhost")).toBeNull();
    expect(await statusAt(A)).toMatchObject({ status: 200 });
    expect(await statusAt(B)).toMatchObject({ status: 200 });
    expect(await statusAt("ghost.localhost")).toMatchObject({ status: 404, code: "tenant_not_found" });
    expect(await statusAt("acme.localhost")).toMatchObject({ status: 200 });
  });

  it("leaves keys outside host:/slug: alone, and is a no-op when nothing drifted", async () => {
    await put("other:keep", "value");
    await reconcile();
    expect(await env.TENANTS.get("other:keep")).toBe("value");
    const a = await record(`host:${A}`);
    const again = await repair(async () => {}, { missing: 0, stale: 0, orphan: 0 });
    expect(again).toMatchObject({ missing: 0, stale: 0, orphan: 0 });
    expect(again.ok).toBe(again.checked);
    expect(await record(`host:${A}`)).toEqual(a);
  });

  it("needs tenants:write", async () => {
    const reader = await mintAdminToken({
      secret: env.ADMIN_JWT_SECRET as string,
      issuer: env.ADMIN_JWT_ISSUER,
      audience: env.ADMIN_JWT_AUDIENCE,
      sub: "reconcile-reader",
      scope: "tenants:read",
    });
    await put("host:ghost2.localhost", "{}");
    const response = await call(`${ADMIN}/v1/reconcile`, { method: "POST", token: reader });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { code: string }).code).toBe("forbidden");
    expect(await env.TENANTS.get("host:ghost2.localhost")).toBe("{}");
    await reconcile();
    expect(await env.TENANTS.get("host:ghost2.localhost")).toBeNull();
  });
});
