/**
 * Tenant records in every state the edge can meet: suspended, deleted, migrating, garbage in KV, a
 * database that does not answer, and a ciphertext moved from another tenant's record. Each test
 * writes its own KV records under its own host, then drops the isolate's tenant cache.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { encryptSecret, parseKeyRing, tenantAad } from "../../src/shared/crypto/secrets.ts";
import type { TenantRecord } from "../../src/shared/tenant-record.ts";
import { purgeTenantCache } from "../../src/worker/edge/resolve.ts";
import { call, json, seedKv, tenant, token } from "./support.ts";

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
}

/** The seeded KV record of a tenant, as the edge reads it. */
function seededRecord(slug: string): TenantRecord {
  const entry = tenant(slug).kv.find((e) => e.key === `slug:${slug}`);
  if (!entry) throw new Error(`no slug record for ${slug}`);
  return JSON.parse(entry.value) as TenantRecord;
}

async function putHost(host: string, value: string | object): Promise<void> {
  await env.TENANTS.put(`host:${host}`, typeof value === "string" ? value : JSON.stringify(value));
  purgeTenantCache();
}

async function expectProblem(response: Response, status: number, code: string): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const body = (await response.json()) as Problem;
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  return body;
}

beforeAll(seedKv);

describe("fetch: tenant status gates every route", () => {
  it("a suspended tenant is 403 tenant_suspended, before auth and for every route", async () => {
    await putHost("suspended.localhost", { ...seededRecord("acme"), status: "suspended" });
    await expectProblem(await call("http://suspended.localhost/api/products"), 403, "tenant_suspended");
    await expectProblem(
      await call("http://suspended.localhost/api/carts", { method: "POST" }),
      403,
      "tenant_suspended",
    );
    await expectProblem(
      await call("http://suspended.localhost/api/carts", { method: "POST", token: await token("acme") }),
      403,
      "tenant_suspended",
    );
    await expectProblem(await call("http://suspended.localhost/no/such/route"), 403, "tenant_suspended");
  });

  it("a deleted tenant is 404 tenant_not_found", async () => {
    await putHost("deleted.localhost", { ...seededRecord("acme"), status: "deleted" });
    await expectProblem(await call("http://deleted.localhost/api/products"), 404, "tenant_not_found");
    await expectProblem(
      await call("http://deleted.localhost/api/carts", { method: "POST", token: await token("acme") }),
      404,
      "tenant_not_found",
    );
  });

  it("a migrating tenant is 503 tenant_migrating with Retry-After", async () => {
    await putHost("migrating.localhost", { ...seededRecord("acme"), status: "migrating" });
    const response = await call("http://migrating.localhost/api/products");
    await expectProblem(response, 503, "tenant_migrating");
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("liveness does not depend on the tenant's state", async () => {
    await putHost("suspended-live.localhost", { ...seededRecord("acme"), status: "suspended" });
    const response = await call("http://suspended-live.localhost/healthz");
    expect(response.status).toBe(200);
  });

  it("a record that changes status takes effect once the cache is dropped", async () => {
    const record = seededRecord("globex");
    await putHost("flip.localhost", record);
    expect((await call("http://flip.localhost/api/products")).status).toBe(200);
    await putHost("flip.localhost", { ...record, status: "suspended" });
    await expectProblem(await call("http://flip.localhost/api/products"), 403, "tenant_suspended");
    await putHost("flip.localhost", { ...record, status: "active" });
    expect((await call("http://flip.localhost/api/products")).status).toBe(200);
  });
});

describe("fetch: a KV value that is not a valid record is no tenant (404), never a 5xx", () => {
  const acme = () => seededRecord("acme");
  const garbage: readonly [string, () => string | object][] = [
    ["not JSON", () => "this is not json"],
    ["truncated JSON", () => JSON.stringify(acme()).slice(0, 40)],
    ["an empty string", () => ""],
    ["JSON null", () => "null"],
    ["a JSON number", () => "42"],
    ["a JSON string", () => JSON.stringify(JSON.stringify(acme()))],
    ["a JSON array", () => JSON.stringify([acme()])],
    ["an empty object", () => ({})],
    ["an unknown version", () => ({ ...acme(), v: 2 })],
    ["no version", () => Object.fromEntries(Object.entries(acme()).filter(([k]) => k !== "v"))],
    ["an unknown status", () => ({ ...acme(), status: "paused" })],
    ["no status", () => Object.fromEntries(Object.entries(acme()).filter(([k]) => k !== "status"))],
    ["no db", () => Object.fromEntries(Object.entries(acme()).filter(([k]) => k !== "db"))],
    ["an empty db", () => ({ ...acme(), db: "" })],
    ["a numeric db", () => ({ ...acme(), db: 42 })],
    ["no id", () => Object.fromEntries(Object.entries(acme()).filter(([k]) => k !== "id"))],
    ["an over-long id", () => ({ ...acme(), id: "x".repeat(65) })],
    [
      "a clear-text connection string instead of a ciphertext field",
      () => ({ ...acme(), db: undefined, url: "postgresql://u:p@127.0.0.1/x" }),
    ],
    ["binary bytes", () => "\u0000\u00ff\ufffd{"],
  ];

  it.each(garbage.map(([name, value], index) => ({ name, value, host: `garbage-${index}.localhost` })))(
    "$name → 404 tenant_not_found",
    async ({ host, value }) => {
      await putHost(host, value());
      const response = await call(`http://${host}/api/products`);
      await expectProblem(response, 404, "tenant_not_found");
    },
  );
});

describe("fetch: a tenant whose database does not answer", () => {
  it("is 503 db_unavailable with Retry-After, within the configured DB timeout (3000 ms)", async () => {
    const id = "ten_dbdown";
    const db = await encryptSecret(
      parseKeyRing(env.DB_ENCRYPTION_KEYS),
      "postgresql://u:p@127.0.0.1:1/nodb", // nothing listens on port 1 of loopback
      tenantAad(id),
    );
    await putHost("dbdown.localhost", { ...seededRecord("acme"), id, slug: "dbdown", db });
    const started = Date.now();
    const response = await call("http://dbdown.localhost/api/products");
    const elapsed = Date.now() - started;
    const body = await expectProblem(response, 503, "db_unavailable");
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(JSON.stringify(body)).not.toContain("127.0.0.1:1");
    // A bound on a hang, not a performance assertion.
    expect(elapsed).toBeLessThan(10_000);
  });

  const withPassword = (url: string, password: string) => {
    const u = new URL(url);
    u.password = password;
    return u.toString();
  };
  const withDatabase = (url: string, database: string) => {
    const u = new URL(url);
    u.pathname = `/${database}`;
    return u.toString();
  };

  it.each([
    ["a wrong password for a real tenant role", () => withPassword(tenant("globex").url, "not-the-password")],
    ["a database that does not exist", () => withDatabase(tenant("globex").url, "no_such_database")],
    ["a host the gateway will not forward to", () => "postgresql://u:p@192.0.2.1:5432/nodb"],
    ["a connection string that is not a URL", () => "this is not a connection string"],
    ["a URL that is not Postgres", () => "https://example.com/db"],
  ])("%s → 503 db_unavailable (or 5xx tenant_unavailable), never internal_error", async (_name, url) => {
    const id = `ten_db_${crypto.randomUUID().slice(0, 8)}`;
    const db = await encryptSecret(parseKeyRing(env.DB_ENCRYPTION_KEYS), url(), tenantAad(id));
    const host = `${id.replace(/_/g, "-")}.localhost`;
    await putHost(host, { ...seededRecord("acme"), id, slug: "dbbroken", db });
    const response = await call(`http://${host}/api/products`);
    expect(response.status).toBeGreaterThanOrEqual(500);
    const text = await response.text();
    const body = JSON.parse(text) as Problem;
    expect(["db_unavailable", "tenant_unavailable"]).toContain(body.code);
    if (body.code === "db_unavailable") {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).not.toBeNull();
    }
    expect(text).not.toContain(url());
    expect(text).not.toMatch(/postgres(ql)?:\/\//i);
  });

  it("also for authenticated writes", async () => {
    const id = "ten_dbdown2";
    const db = await encryptSecret(
      parseKeyRing(env.DB_ENCRYPTION_KEYS),
      "postgresql://u:p@127.0.0.1:1/nodb",
      tenantAad(id),
    );
    await putHost("dbdown2.localhost", { ...seededRecord("acme"), id, slug: "dbdown2", db });
    const response = await call("http://dbdown2.localhost/api/carts", {
      method: "POST",
      token: await token("dbdown2"),
    });
    await expectProblem(response, 503, "db_unavailable");
    expect(response.headers.get("retry-after")).not.toBeNull();
  });
});

describe("fetch: a ciphertext moved to another tenant's record is refused", () => {
  const globexSecrets = () => [tenant("globex").url, new URL(tenant("globex").url).password, tenant("globex").database];
  const globexSkus = ["GLOBEX-HAMMOCK", "GLOBEX-SAUCE"];

  async function expectRefused(response: Response): Promise<void> {
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(response.status).toBeLessThan(600);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    const text = await response.text();
    const body = JSON.parse(text) as Problem;
    expect(body.code).toBe("tenant_unavailable");
    expect(body.status).toBe(response.status);
    for (const secret of globexSecrets()) expect(text).not.toContain(secret);
    for (const sku of globexSkus) expect(text).not.toContain(sku);
    expect(text).not.toMatch(/postgres(ql)?:\/\//i);
    for (const [key, value] of response.headers) {
      for (const secret of globexSecrets()) expect(`${key}: ${value}`).not.toContain(secret);
    }
  }

  it("acme's record with globex's db ciphertext does not serve globex's data", async () => {
    await putHost("swapped.localhost", { ...seededRecord("acme"), db: seededRecord("globex").db });
    await expectRefused(await call("http://swapped.localhost/api/products"));
    await expectRefused(
      await call("http://swapped.localhost/api/carts", { method: "POST", token: await token("acme") }),
    );
  });

  it("the same ciphertext keeps working for its own tenant (the refusal is the AAD, not the key)", async () => {
    await putHost("globex-alias.localhost", seededRecord("globex"));
    const response = await call("http://globex-alias.localhost/api/products");
    expect(response.status).toBe(200);
    const skus = ((await response.json()) as { items: { sku: string }[] }).items.map((p) => p.sku);
    expect(skus).toEqual(expect.arrayContaining(globexSkus));
  });

  it.each([
    ["globex's id and slug with acme's ciphertext", () => ({ ...seededRecord("globex"), db: seededRecord("acme").db })],
    ["a tampered ciphertext", () => ({ ...seededRecord("acme"), db: tamper(seededRecord("acme").db) })],
    [
      "an unknown key id",
      () => ({ ...seededRecord("acme"), db: seededRecord("acme").db.replace(/^v1\.[^.]+\./, "v1.k9.") }),
    ],
    ["a ciphertext that is not a ciphertext", () => ({ ...seededRecord("acme"), db: "not-a-ciphertext" })],
    ["a clear-text connection string in db", () => ({ ...seededRecord("acme"), db: tenant("globex").url })],
  ])("%s → tenant_unavailable", async (_name, record) => {
    const host = `bad-db-${Math.random().toString(36).slice(2, 10)}.localhost`;
    await putHost(host, record());
    await expectRefused(await call(`http://${host}/api/products`));
  });

  it("a POST with a body is refused the same way and creates nothing on globex", async () => {
    await putHost("swapped-post.localhost", { ...seededRecord("acme"), db: seededRecord("globex").db });
    const sku = `SWAP-${crypto.randomUUID()}`;
    const response = await call("http://swapped-post.localhost/api/products", {
      ...json({ sku, name: "Should not exist", priceCents: 1 }),
      token: await token("acme"),
    });
    await expectRefused(response);
    const globex = (await (await call("http://globex.localhost/api/products?limit=100")).json()) as {
      items: { sku: string }[];
    };
    expect(globex.items.map((p) => p.sku)).not.toContain(sku);
  });
});

/** Flips one character in the sealed part of a `v1.<kid>.<iv>.<sealed>` ciphertext. */
function tamper(ciphertext: string): string {
  const at = ciphertext.length - 5;
  const flipped = ciphertext[at] === "A" ? "B" : "A";
  return `${ciphertext.slice(0, at)}${flipped}${ciphertext.slice(at + 1)}`;
}
