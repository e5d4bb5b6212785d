/**
 * A tenant's whole life through the admin API (ADMIN_HOST), checked at the edge and in Postgres:
 * create with a domain → served from its own new database → suspend → resume → second domain added
 * and removed → delete (confirmed) → its hosts are gone and so is its database. Plus the refusals:
 * duplicate slug or domain (409), a deleted tenant's slug, invalid input (422 with paths), an
 * unsupported region; listing with filters and cursor pagination; the OpenAPI document.
 *
 * Slugs here start with `lc-`: the control database is shared with every other test file.
 */

import { env } from "cloudflare:test";
import { neon, neonConfig } from "@neondatabase/serverless";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import { call, json, seedKv, token } from "./support.ts";

interface Problem {
  status: number;
  code: string;
  errors?: { path: string; message: string }[];
}

interface TenantView {
  id: string;
  slug: string;
  status: string;
  region: string;
  domains: string[];
  schemaVersion: string | null;
  deletedAt: string | null;
}

const ADMIN = "http://admin.localhost";
let admin = "";

const adminToken = (scope = ALL_ADMIN_SCOPES, sub = "lifecycle-ops") =>
  mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub,
    scope,
  });

async function body<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function problem(response: Response, status: number, code: string): Promise<Problem> {
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const parsed = await body<Problem>(response, status);
  expect(parsed.code).toBe(code);
  return parsed;
}

const createTenant = (input: Record<string, unknown>) => call(`${ADMIN}/v1/tenants`, { ...json(input), token: admin });
const adminPost = (path: string) => call(`${ADMIN}${path}`, { method: "POST", token: admin });
const adminGet = (path: string) => call(`${ADMIN}${path}`, { token: admin });
const adminDelete = (path: string) => call(`${ADMIN}${path}`, { method: "DELETE", token: admin });

async function created(input: Record<string, unknown>): Promise<TenantView> {
  const tenant = await body<TenantView>(await createTenant(input), 201);
  expect(tenant.status).toBe("active");
  return tenant;
}

async function productSkus(host: string): Promise<string[]> {
  const response = await call(`http://${host}/api/products`);
  return (await body<{ items: { sku: string }[] }>(response, 200)).items.map((p) => p.sku);
}

/** Postgres as the superuser, through the gateway (workerd cannot use `pg`). */
function superuser() {
  neonConfig.fetchEndpoint = inject("gatewayUrl");
  return neon(inject("adminUrl"));
}

async function databaseExists(name: string): Promise<boolean> {
  const rows = await superuser().query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
  return rows.length > 0;
}

async function roleExists(name: string): Promise<boolean> {
  const rows = await superuser().query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name]);
  return rows.length > 0;
}

beforeAll(async () => {
  await seedKv();
  admin = await adminToken();
});

describe("admin API: a tenant's full lifecycle", () => {
  const slug = "lc-life";
  const shop = "shop.lc-life.localhost";
  const www = "www.lc-life.localhost";
  const sku = "LC-LIFE-1";

  it("creates the tenant with a domain and serves it from its own new, empty database", async () => {
    const tenant = await created({ slug, region: "eu-central", domains: [shop] });
    expect(tenant).toMatchObject({ slug, region: "eu-central", domains: [shop], deletedAt: null });
    expect(tenant.id).toMatch(/^ten_/);
    expect(tenant.schemaVersion).not.toBeNull();
    expect(await databaseExists("tenant_lc_life")).toBe(true);
    expect(await roleExists("tenant_lc_life_app")).toBe(true);

    expect(await body(await call(`http://${shop}/api/products`), 200)).toEqual({ items: [] });
    // The platform subdomain resolves through the slug record.
    expect(await productSkus(`${slug}.tenantry.localhost`)).toEqual([]);

    const product = await call(`http://${shop}/api/products`, {
      ...json({ sku, name: "Lifecycle widget", priceCents: 250, stock: 3 }),
      token: await token(slug, "alice", { scope: "catalog:write" }),
    });
    expect((await body<{ sku: string }>(product, 201)).sku).toBe(sku);
    expect(await productSkus(shop)).toEqual([sku]);
    // Nothing of the demo tenants is in there, and the product is not in theirs.
    expect(await productSkus("acme.localhost")).not.toContain(sku);
  });

  it("shows the tenant", async () => {
    const shown = await body<TenantView>(await adminGet(`/v1/tenants/${slug}`), 200);
    expect(shown).toMatchObject({ slug, status: "active", domains: [shop] });
    await problem(await adminGet("/v1/tenants/lc-never-created"), 404, "not_found");
  });

  it("suspends: every route of its hosts answers 403 tenant_suspended", async () => {
    const suspended = await body<TenantView>(await adminPost(`/v1/tenants/${slug}/suspend`), 200);
    expect(suspended.status).toBe("suspended");
    await problem(await call(`http://${shop}/api/products`), 403, "tenant_suspended");
    await problem(await call(`http://${slug}.tenantry.localhost/api/products`), 403, "tenant_suspended");
    await problem(
      await call(`http://${shop}/api/carts`, { method: "POST", token: await token(slug) }),
      403,
      "tenant_suspended",
    );
    // Suspending twice is a no-op.
    expect((await body<TenantView>(await adminPost(`/v1/tenants/${slug}/suspend`), 200)).status).toBe("suspended");
  });

  it("resumes: served again, data intact", async () => {
    const resumed = await body<TenantView>(await adminPost(`/v1/tenants/${slug}/resume`), 200);
    expect(resumed.status).toBe("active");
    expect(await productSkus(shop)).toEqual([sku]);
    // Resuming an active tenant is a no-op.
    expect((await body<TenantView>(await adminPost("/v1/tenants/acme/resume"), 200)).status).toBe("active");
  });

  it("serves a second domain once added, and stops once it is removed", async () => {
    await problem(await call(`http://${www}/api/products`), 404, "tenant_not_found");
    const added = await body<TenantView>(
      await call(`${ADMIN}/v1/tenants/${slug}/domains`, { ...json({ domain: www }), token: admin }),
      200,
    );
    expect(added.domains.sort()).toEqual([shop, www].sort());
    expect(await productSkus(www)).toEqual([sku]);
    // Adding it again is idempotent.
    const again = await call(`${ADMIN}/v1/tenants/${slug}/domains`, {
      ...json({ domain: www.toUpperCase() }),
      token: admin,
    });
    expect((await body<TenantView>(again, 200)).domains.sort()).toEqual([shop, www].sort());

    const removed = await body<TenantView>(await adminDelete(`/v1/tenants/${slug}/domains/${www}`), 200);
    expect(removed.domains).toEqual([shop]);
    await problem(await call(`http://${www}/api/products`), 404, "tenant_not_found");
    expect(await productSkus(shop)).toEqual([sku]);
    await problem(await adminDelete(`/v1/tenants/${slug}/domains/${www}`), 404, "not_found");
    // Another tenant's domain cannot be removed through this tenant.
    await problem(await adminDelete(`/v1/tenants/${slug}/domains/acme.localhost`), 404, "not_found");
    expect(await productSkus("acme.localhost")).toEqual(expect.arrayContaining(["ACME-ANVIL"]));
  });

  it("refuses to delete without the slug echoed back", async () => {
    const missing = await problem(await adminDelete(`/v1/tenants/${slug}`), 422, "confirmation_required");
    expect(missing.errors?.map((e) => e.path)).toContain("confirm");
    await problem(await adminDelete(`/v1/tenants/${slug}?confirm=acme`), 422, "confirmation_required");
    await problem(await adminDelete(`/v1/tenants/${slug}?confirm=${slug.toUpperCase()}`), 422, "confirmation_required");
    expect(await productSkus(shop)).toEqual([sku]);
    expect(await databaseExists("tenant_lc_life")).toBe(true);
  });

  it("deletes: its hosts are 404 tenant_not_found and its database and role are gone", async () => {
    const deleted = await body<TenantView>(await adminDelete(`/v1/tenants/${slug}?confirm=${slug}`), 200);
    expect(deleted).toMatchObject({ slug, status: "deleted", domains: [] });
    expect(deleted.deletedAt).not.toBeNull();
    await problem(await call(`http://${shop}/api/products`), 404, "tenant_not_found");
    await problem(await call(`http://${slug}.tenantry.localhost/api/products`), 404, "tenant_not_found");
    await problem(
      await call(`http://${shop}/api/carts`, { method: "POST", token: await token(slug) }),
      404,
      "tenant_not_found",
    );
    expect(await databaseExists("tenant_lc_life")).toBe(false);
    expect(await roleExists("tenant_lc_life_app")).toBe(false);
    // The record stays (audit), without domains; deleting again is a no-op.
    expect(await body<TenantView>(await adminGet(`/v1/tenants/${slug}`), 200)).toMatchObject({
      status: "deleted",
      domains: [],
    });
    expect((await body<TenantView>(await adminDelete(`/v1/tenants/${slug}?confirm=${slug}`), 200)).status).toBe(
      "deleted",
    );
    // A deleted tenant cannot be suspended, resumed or given a domain.
    await problem(await adminPost(`/v1/tenants/${slug}/suspend`), 409, "invalid_state");
    await problem(await adminPost(`/v1/tenants/${slug}/resume`), 409, "invalid_state");
    await problem(
      await call(`${ADMIN}/v1/tenants/${slug}/domains`, { ...json({ domain: shop }), token: admin }),
      409,
      "invalid_state",
    );
  });

  it("never reuses a deleted tenant's slug, but its freed domain can go to a new tenant", async () => {
    await problem(await createTenant({ slug, region: "eu-central" }), 409, "conflict");
    const heir = await created({ slug: "lc-heir", region: "local", domains: [shop] });
    expect(heir.domains).toEqual([shop]);
    expect(await productSkus(shop)).toEqual([]);
  });
});

describe("admin API: conflicts and validation", () => {
  it("a duplicate slug is 409 conflict and leaves the first tenant alone", async () => {
    const first = await created({ slug: "lc-dup", region: "local", domains: ["shop.lc-dup.localhost"] });
    await problem(
      await createTenant({ slug: "lc-dup", region: "us-east", domains: ["other.lc-dup.localhost"] }),
      409,
      "conflict",
    );
    const shown = await body<TenantView>(await adminGet("/v1/tenants/lc-dup"), 200);
    expect(shown).toMatchObject({ id: first.id, region: "local", domains: ["shop.lc-dup.localhost"] });
    await problem(await call("http://other.lc-dup.localhost/api/products"), 404, "tenant_not_found");
  });

  it("another tenant's domain is 409 conflict, on create and on add, however it is spelled", async () => {
    for (const domain of ["acme.localhost", "ACME.localhost", "acme.localhost."]) {
      await problem(await createTenant({ slug: "lc-thief", region: "local", domains: [domain] }), 409, "conflict");
    }
    // The refused create left nothing behind: no tenant, no database.
    await problem(await adminGet("/v1/tenants/lc-thief"), 404, "not_found");
    expect(await databaseExists("tenant_lc_thief")).toBe(false);

    await created({ slug: "lc-owner", region: "local" });
    await problem(
      await call(`${ADMIN}/v1/tenants/lc-owner/domains`, { ...json({ domain: "globex.localhost" }), token: admin }),
      409,
      "conflict",
    );
    expect(await productSkus("globex.localhost")).toEqual(expect.arrayContaining(["GLOBEX-SAUCE"]));
    expect((await body<TenantView>(await adminGet("/v1/tenants/globex"), 200)).domains).toEqual(["globex.localhost"]);
  });

  it.each([
    { name: "uppercase slug", input: { slug: "LC-Upper", region: "local" }, path: "slug" },
    { name: "slug too short", input: { slug: "lc", region: "local" }, path: "slug" },
    { name: "slug with underscore", input: { slug: "lc_under", region: "local" }, path: "slug" },
    { name: "slug with double dash", input: { slug: "lc--double", region: "local" }, path: "slug" },
    { name: "slug starting with a digit", input: { slug: "1lc-digit", region: "local" }, path: "slug" },
    { name: "slug too long", input: { slug: `lc-${"a".repeat(40)}`, region: "local" }, path: "slug" },
    { name: "missing slug", input: { region: "local" }, path: "slug" },
    { name: "empty region", input: { slug: "lc-region", region: "" }, path: "region" },
    { name: "region too long", input: { slug: "lc-region", region: "r".repeat(40) }, path: "region" },
    { name: "missing region", input: { slug: "lc-region" }, path: "region" },
    {
      name: "domain not a host name",
      input: { slug: "lc-domain", region: "local", domains: ["not a host"] },
      path: "domain",
    },
    {
      name: "domain an IP literal",
      input: { slug: "lc-domain", region: "local", domains: ["127.0.0.1"] },
      path: "domain",
    },
    {
      name: "domain the admin host",
      input: { slug: "lc-domain", region: "local", domains: ["admin.localhost"] },
      path: "domain",
    },
    { name: "unknown field", input: { slug: "lc-extra", region: "local", owner: "mallory" }, path: "(root)" },
  ])("$name → 422 validation_failed at $path", async ({ input, path }) => {
    const refused = await problem(await createTenant(input), 422, "validation_failed");
    expect(refused.errors?.map((e) => e.path)).toContain(path);
    const slug = (input as { slug?: string }).slug;
    if (slug && /^[a-z][a-z0-9-]{2,31}$/.test(slug))
      await problem(await adminGet(`/v1/tenants/${slug}`), 404, "not_found");
  });

  it("an unsupported region is 422 region_unsupported (data residency), and nothing is created", async () => {
    const refused = await problem(
      await createTenant({ slug: "lc-mars", region: "mars-north-1" }),
      422,
      "region_unsupported",
    );
    expect(refused.errors?.map((e) => e.path)).toContain("region");
    await problem(await adminGet("/v1/tenants/lc-mars"), 404, "not_found");
    expect(await databaseExists("tenant_lc_mars")).toBe(false);
  });

  it("an invalid domain on add is 422 at path domain", async () => {
    const refused = await problem(
      await call(`${ADMIN}/v1/tenants/lc-dup/domains`, { ...json({ domain: "bad host!" }), token: admin }),
      422,
      "validation_failed",
    );
    expect(refused.errors?.map((e) => e.path)).toContain("domain");
    await problem(
      await call(`${ADMIN}/v1/tenants/lc-dup/domains`, { ...json({ domain: "admin.localhost" }), token: admin }),
      422,
      "validation_failed",
    );
  });

  it("a body that is not JSON is 400 bad_request, never a 500", async () => {
    const response = await call(`${ADMIN}/v1/tenants`, {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
      token: admin,
    });
    await problem(response, 400, "bad_request");
    await problem(
      await call(`${ADMIN}/v1/tenants/lc-dup/domains`, {
        method: "POST",
        body: "[",
        headers: { "content-type": "application/json" },
        token: admin,
      }),
      400,
      "bad_request",
    );
  });

  it("a body that is not declared as JSON is 415, never a 500", async () => {
    const response = await call(`${ADMIN}/v1/tenants`, {
      method: "POST",
      body: JSON.stringify({ slug: "lc-plain", region: "local" }),
      headers: { "content-type": "text/plain" },
      token: admin,
    });
    expect(response.status).toBe(415);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    await problem(await adminGet("/v1/tenants/lc-plain"), 404, "not_found");
  });

  it("a create without any body is 422 at slug and region", async () => {
    const refused = await problem(
      await call(`${ADMIN}/v1/tenants`, { method: "POST", token: admin }),
      422,
      "validation_failed",
    );
    expect(refused.errors?.map((e) => e.path)).toEqual(expect.arrayContaining(["slug", "region"]));
    const noDomain = await problem(
      await call(`${ADMIN}/v1/tenants/lc-dup/domains`, { method: "POST", token: admin }),
      422,
      "validation_failed",
    );
    expect(noDomain.errors?.map((e) => e.path)).toContain("domain");
  });
});

describe("admin API: listing", () => {
  beforeAll(async () => {
    await created({ slug: "lc-list-a", region: "us-east" });
    await created({ slug: "lc-list-b", region: "us-east" });
    await body(await adminPost("/v1/tenants/lc-list-b/suspend"), 200);
  });

  const list = async (query: string) =>
    body<{ items: TenantView[]; next?: string }>(await adminGet(`/v1/tenants?${query}`), 200);

  it("filters by region", async () => {
    const { items } = await list("region=us-east&limit=200");
    expect(items.every((t) => t.region === "us-east")).toBe(true);
    expect(items.map((t) => t.slug)).toEqual(expect.arrayContaining(["lc-list-a", "lc-list-b"]));
    expect(items.map((t) => t.slug)).not.toContain("acme");
  });

  it("filters by status, and by both", async () => {
    const suspended = await list("status=suspended&limit=200");
    expect(suspended.items.every((t) => t.status === "suspended")).toBe(true);
    expect(suspended.items.map((t) => t.slug)).toContain("lc-list-b");
    expect(suspended.items.map((t) => t.slug)).not.toContain("lc-list-a");
    const both = await list("status=active&region=us-east&limit=200");
    expect(both.items.every((t) => t.status === "active" && t.region === "us-east")).toBe(true);
    expect(both.items.map((t) => t.slug)).toContain("lc-list-a");
    expect(both.items.map((t) => t.slug)).not.toContain("lc-list-b");
    expect((await list("region=nowhere")).items).toEqual([]);
  });

  it("pages with a cursor: limit=1, following next until it is absent, sees every tenant once", async () => {
    const seen: TenantView[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 500; page++) {
      const result = await list(`limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(result.items.length).toBeLessThanOrEqual(1);
      seen.push(...result.items);
      cursor = result.next;
      if (!cursor) break;
    }
    expect(cursor).toBeUndefined();
    const ids = seen.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(seen.map((t) => t.slug)).toEqual(
      expect.arrayContaining(["acme", "globex", "initech", "lc-list-a", "lc-list-b", "lc-dup"]),
    );
    // Pages of two agree with pages of one.
    const firstTwo = await list("limit=2");
    expect(firstTwo.items.map((t) => t.id)).toEqual(ids.slice(0, 2));
    expect(firstTwo.next).toBe(ids[1]);
  });

  it("refuses bad list parameters with 422", async () => {
    for (const query of ["status=sleeping", "limit=0", "limit=201", "limit=abc"]) {
      await problem(await adminGet(`/v1/tenants?${query}`), 422, "validation_failed");
    }
  });

  it("never shows a connection string or secret", async () => {
    const text = await (await adminGet("/v1/tenants?limit=200")).text();
    expect(text).not.toMatch(/postgres(ql)?:\/\//);
    expect(text).not.toMatch(/dbSecret|migrationSecret|resourceRef/);
  });
});

describe("admin API: OpenAPI document", () => {
  it("is served on the admin host and lists the tenant paths", async () => {
    const doc = await body<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      await call(`${ADMIN}/openapi.json`),
      200,
    );
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/tenants",
        "/v1/tenants/{slug}",
        "/v1/tenants/{slug}/suspend",
        "/v1/tenants/{slug}/resume",
        "/v1/tenants/{slug}/retry",
        "/v1/tenants/{slug}/domains",
        "/v1/tenants/{slug}/domains/{domain}",
        "/v1/reconcile",
        "/v1/audit",
      ]),
    );
    expect(Object.keys(doc.paths["/v1/tenants"] ?? {})).toEqual(expect.arrayContaining(["get", "post"]));
    expect(Object.keys(doc.paths["/v1/tenants/{slug}"] ?? {})).toEqual(expect.arrayContaining(["get", "delete"]));
  });
});
