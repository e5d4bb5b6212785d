/**
 * Nothing secret leaves the Worker: with LOG_LEVEL=debug, across successes, every kind of client
 * error and the database failures, no response body or header and no log line carries a tenant
 * connection string, a password, key material, SQL text or a stack trace; and every error response
 * is RFC 9457 problem+json with `type`, `title`, `status` and `code`.
 */
import { env } from "cloudflare:test";
import { afterAll, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { encryptSecret, parseKeyRing, tenantAad } from "../../src/shared/crypto/secrets.ts";
import type { TenantRecord } from "../../src/shared/tenant-record.ts";
import { purgeTenantCache } from "../../src/worker/edge/resolve.ts";
import { call, json, seedKv, tenant, tenants, token } from "./support.ts";

const DEBUG = { LOG_LEVEL: "debug" } as const;
/** A connection string with a password distinctive enough to search for. */
const DOWN_URL = "postgresql://leaky_user:Sup3r-Secret-Pa55word-4-leaks@127.0.0.1:1/leaky_db";
const MAX_BODY = 256 * 1024;

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  errors?: { path: string; message: string }[];
}

interface Scenario {
  readonly name: string;
  readonly send: () => Promise<Response>;
  readonly status: number;
  /** Problem code for error responses. */
  readonly code?: string;
  /** Field paths that must appear in `errors[].path` (validation failures). */
  readonly paths?: readonly string[];
}

/** Everything that must never appear in a response or a log line. */
let secrets: string[] = [];
const SQL = [
  /\bselect\b[\s\S]*\bfrom\b/i,
  /\binsert\s+into\b/i,
  /\bupdate\b[\s\S]*\bset\b/i,
  /\bdelete\s+from\b/i,
  /\bON CONFLICT\b/i,
  /\bRETURNING\b/,
  /\$\d+\b/,
];
const STACK = [/ {4}at /, /\bat [^\s]+ \([^)]*:\d+:\d+\)/, /\.(?:ts|js|mjs):\d+:\d+/];
const CONNECTION = /postgres(?:ql)?:\/\//i;

function expectClean(where: string, text: string): void {
  expect(text, `${where} has a connection string scheme`).not.toMatch(CONNECTION);
  for (const secret of secrets) expect(text.includes(secret), `${where} contains a secret`).toBe(false);
  for (const pattern of SQL) expect(text, `${where} looks like SQL`).not.toMatch(pattern);
  for (const pattern of STACK) expect(text, `${where} looks like a stack trace`).not.toMatch(pattern);
}

let lines: string[] = [];
const spies: MockInstance[] = [];

function capture(method: "log" | "info" | "warn" | "error" | "debug"): void {
  spies.push(
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(
        args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.stack}` : JSON.stringify(a))).join(" "),
      );
    }),
  );
}

const ids = {
  acmeToken: "",
  globexToken: "",
  cartId: "",
  fullCartId: "",
  orderedCartId: "",
  emptyCartId: "",
  lowStockCartId: "",
  productId: "",
};

const acmeCall = (path: string, init: RequestInit & { token?: string } = {}) =>
  call(`http://acme.localhost${path}`, { ...init, env: DEBUG });

function record(slug: string): TenantRecord {
  const entry = tenant(slug).kv.find((e) => e.key === `slug:${slug}`);
  if (!entry) throw new Error(`no record for ${slug}`);
  return JSON.parse(entry.value) as TenantRecord;
}

async function created<T>(response: Response): Promise<T> {
  expect(response.status).toBe(201);
  return (await response.json()) as T;
}

beforeAll(async () => {
  await seedKv();
  const ring = parseKeyRing(env.DB_ENCRYPTION_KEYS);
  await env.TENANTS.put(
    "host:leaky-down.localhost",
    JSON.stringify({
      ...record("acme"),
      id: "ten_leaky_down",
      slug: "leakydown",
      db: await encryptSecret(ring, DOWN_URL, tenantAad("ten_leaky_down")),
    }),
  );
  await env.TENANTS.put("host:leaky-swapped.localhost", JSON.stringify({ ...record("acme"), db: record("globex").db }));
  await env.TENANTS.put("host:leaky-suspended.localhost", JSON.stringify({ ...record("acme"), status: "suspended" }));
  await env.TENANTS.put("host:leaky-migrating.localhost", JSON.stringify({ ...record("acme"), status: "migrating" }));
  await env.TENANTS.put("host:leaky-garbage.localhost", "{ this is not json");
  purgeTenantCache();

  secrets = [
    DOWN_URL,
    new URL(DOWN_URL).password,
    env.JWT_SECRET as string,
    ...env.DB_ENCRYPTION_KEYS.split(",").map((entry) => entry.slice(entry.indexOf(":") + 1)),
    ...tenants().flatMap((t) => [t.url, decodeURIComponent(new URL(t.url).password), record(t.slug).db]),
  ];
  // Searching for a short password would prove nothing: make sure each one is distinctive.
  for (const t of tenants()) expect(new URL(t.url).password.length).toBeGreaterThanOrEqual(12);

  ids.acmeToken = await token("acme", "leak-tester", { scope: "catalog:write" });
  ids.globexToken = await token("globex", "leak-tester");
  const t = ids.acmeToken;
  const product = await created<{ id: string }>(
    await acmeCall("/api/products", {
      ...json({ sku: `LEAK-${crypto.randomUUID()}`, name: "Leak probe", priceCents: 100, stock: 1 }),
      token: t,
    }),
  );
  ids.productId = product.id;
  const newCart = async () =>
    (await created<{ id: string }>(await acmeCall("/api/carts", { method: "POST", token: t }))).id;
  ids.cartId = await newCart();
  ids.emptyCartId = await newCart();
  ids.fullCartId = await newCart();
  await created(
    await acmeCall(`/api/carts/${ids.fullCartId}/items`, {
      ...json({ productId: ids.productId, quantity: 600 }),
      token: t,
    }),
  );
  ids.lowStockCartId = await newCart();
  await created(
    await acmeCall(`/api/carts/${ids.lowStockCartId}/items`, {
      ...json({ productId: ids.productId, quantity: 2 }),
      token: t,
    }),
  );
  ids.orderedCartId = await newCart();
  const anvil = (
    (await (await acmeCall("/api/products?limit=100")).json()) as { items: { id: string; sku: string }[] }
  ).items.find((p) => p.sku === "ACME-ANVIL");
  if (!anvil) throw new Error("no anvil");
  await created(
    await acmeCall(`/api/carts/${ids.orderedCartId}/items`, {
      ...json({ productId: anvil.id, quantity: 1 }),
      token: t,
    }),
  );
  await created(await acmeCall("/api/orders", { ...json({ cartId: ids.orderedCartId }), token: t }));

  for (const method of ["log", "info", "warn", "error", "debug"] as const) capture(method);
});

afterAll(() => {
  for (const spy of spies) spy.mockRestore();
});

beforeEach(() => {
  lines = [];
});

const post =
  (path: string, body: unknown, withToken = true) =>
  () =>
    acmeCall(path, { ...json(body), ...(withToken ? { token: ids.acmeToken } : {}) });

const scenarios: readonly Scenario[] = [
  // Successes.
  { name: "list products", send: () => acmeCall("/api/products"), status: 200 },
  { name: "read one product", send: () => acmeCall(`/api/products/${ids.productId}`), status: 200 },
  { name: "create a cart", send: () => acmeCall("/api/carts", { method: "POST", token: ids.acmeToken }), status: 201 },
  { name: "read a cart", send: () => acmeCall(`/api/carts/${ids.cartId}`, { token: ids.acmeToken }), status: 200 },
  { name: "liveness", send: () => acmeCall("/healthz"), status: 200 },
  // Database constraint violations (driver errors carry SQL and constraint details).
  {
    name: "duplicate sku",
    send: post("/api/products", { sku: "ACME-ANVIL", name: "Another anvil", priceCents: 1 }),
    status: 409,
    code: "conflict",
  },
  {
    name: "cart item for a product that does not exist (foreign key)",
    send: () => post(`/api/carts/${ids.cartId}/items`, { productId: crypto.randomUUID(), quantity: 1 })(),
    status: 422,
    code: "validation_failed",
    paths: ["productId"],
  },
  {
    name: "cart item quantity over the database's limit (check constraint)",
    send: () => post(`/api/carts/${ids.fullCartId}/items`, { productId: ids.productId, quantity: 600 })(),
    status: 422,
    code: "validation_failed",
    paths: ["quantity"],
  },
  {
    name: "order with more than the stock (check constraint inside a batch)",
    send: () => post("/api/orders", { cartId: ids.lowStockCartId })(),
    status: 409,
    code: "insufficient_stock",
  },
  {
    name: "order an empty cart",
    send: () => post("/api/orders", { cartId: ids.emptyCartId })(),
    status: 422,
    code: "cart_empty",
  },
  {
    name: "order a cart twice",
    send: () => post("/api/orders", { cartId: ids.orderedCartId })(),
    status: 409,
    code: "cart_closed",
  },
  // Validation failures.
  {
    name: "product with invalid fields",
    send: post("/api/products", { sku: "", name: "x", priceCents: -1, currency: "usd", stock: 1.5 }),
    status: 422,
    code: "validation_failed",
    paths: ["sku", "priceCents", "currency", "stock"],
  },
  {
    name: "product with a price as a string and an unknown field",
    send: post("/api/products", { sku: "LEAK-X", name: "x", priceCents: "5", admin: true }),
    status: 422,
    code: "validation_failed",
    paths: ["priceCents"],
  },
  {
    name: "cart item with a non-uuid product and zero quantity",
    send: () => post(`/api/carts/${ids.cartId}/items`, { productId: "'; DROP TABLE products; --", quantity: 0 })(),
    status: 422,
    code: "validation_failed",
    paths: ["productId", "quantity"],
  },
  {
    name: "order with a numeric cart id",
    send: post("/api/orders", { cartId: 42 }),
    status: 422,
    code: "validation_failed",
    paths: ["cartId"],
  },
  {
    name: "list with limit 0",
    send: () => acmeCall("/api/products?limit=0"),
    status: 422,
    code: "validation_failed",
    paths: ["limit"],
  },
  {
    name: "list with a non-uuid cursor",
    send: () => acmeCall("/api/products?after=1%27%20OR%201=1"),
    status: 422,
    code: "validation_failed",
    paths: ["after"],
  },
  // Malformed and oversized bodies.
  {
    name: "malformed JSON",
    send: () =>
      acmeCall("/api/products", {
        method: "POST",
        body: '{"sku": "A", ',
        headers: { "content-type": "application/json" },
        token: ids.acmeToken,
      }),
    status: 400,
    code: "bad_request",
  },
  {
    name: "empty body",
    send: () =>
      acmeCall("/api/orders", {
        method: "POST",
        headers: { "content-type": "application/json" },
        token: ids.acmeToken,
      }),
    status: 400,
    code: "bad_request",
  },
  {
    name: "a body over 256 KiB",
    send: post("/api/products", { sku: "BIG", name: "x".repeat(MAX_BODY + 1), priceCents: 1 }),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "a body over 256 KiB without a token (limit comes first)",
    send: post("/api/products", { sku: "BIG", name: "x".repeat(MAX_BODY + 1), priceCents: 1 }, false),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "a streamed body over 256 KiB (no Content-Length)",
    send: () => {
      const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 5) controller.enqueue(chunk);
          else controller.close();
        },
      });
      return acmeCall("/api/products", {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
        token: ids.acmeToken,
      });
    },
    status: 413,
    code: "payload_too_large",
  },
  // Routing.
  { name: "unknown API route", send: () => acmeCall("/api/nope"), status: 404, code: "not_found" },
  {
    name: "unknown route outside the API",
    send: () => acmeCall("/wp-admin/setup.php"),
    status: 404,
    code: "not_found",
  },
  {
    name: "unsupported method",
    send: () => acmeCall("/api/products", { method: "DELETE" }),
    status: 404,
    code: "not_found",
  },
  { name: "a non-uuid id", send: () => acmeCall("/api/products/1%20OR%201=1"), status: 404, code: "not_found" },
  {
    name: "an unknown product",
    send: () => acmeCall(`/api/products/${crypto.randomUUID()}`),
    status: 404,
    code: "not_found",
  },
  // Auth.
  { name: "no token", send: () => acmeCall("/api/carts", { method: "POST" }), status: 401, code: "unauthorized" },
  {
    name: "a garbled token",
    send: () => acmeCall("/api/carts", { method: "POST", token: `${ids.acmeToken.slice(0, -4)}AAAA` }),
    status: 401,
    code: "unauthorized",
  },
  {
    name: "another tenant's token",
    send: () => acmeCall("/api/carts", { method: "POST", token: ids.globexToken }),
    status: 403,
    code: "tenant_mismatch",
  },
  // Hosts and tenant states.
  {
    name: "an IP host",
    send: () => call("http://127.0.0.1/api/products", { env: DEBUG }),
    status: 400,
    code: "invalid_host",
  },
  {
    name: "an unknown host",
    send: () => call("http://nobody.localhost/api/products", { env: DEBUG }),
    status: 404,
    code: "tenant_not_found",
  },
  {
    name: "a garbage KV record",
    send: () => call("http://leaky-garbage.localhost/api/products", { env: DEBUG }),
    status: 404,
    code: "tenant_not_found",
  },
  {
    name: "a suspended tenant",
    send: () => call("http://leaky-suspended.localhost/api/products", { env: DEBUG }),
    status: 403,
    code: "tenant_suspended",
  },
  {
    name: "a migrating tenant",
    send: () => call("http://leaky-migrating.localhost/api/products", { env: DEBUG }),
    status: 503,
    code: "tenant_migrating",
  },
  // Database failures.
  {
    name: "a tenant whose database is down (read)",
    send: () => call("http://leaky-down.localhost/api/products", { env: DEBUG }),
    status: 503,
    code: "db_unavailable",
  },
  {
    name: "a tenant whose database is down (write)",
    send: async () =>
      call("http://leaky-down.localhost/api/products", {
        ...json({ sku: "DOWN", name: "x", priceCents: 1 }),
        token: await token("leakydown", "alice", { scope: "catalog:write" }),
        env: DEBUG,
      }),
    status: 503,
    code: "db_unavailable",
  },
  {
    name: "a record with another tenant's ciphertext",
    send: () => call("http://leaky-swapped.localhost/api/products", { env: DEBUG }),
    status: 500,
    code: "tenant_unavailable",
  },
];

describe("fetch: no secrets, SQL or stacks in responses or logs (LOG_LEVEL=debug)", () => {
  it.each(scenarios)("$name → $status", async ({ send, status, code, paths }) => {
    const response = await send();
    const text = await response.text();
    expect(response.status).toBe(status);

    // Responses.
    expectClean("response body", text);
    for (const [name, value] of response.headers) expectClean(`response header ${name}`, `${name}: ${value}`);
    if (status >= 400) {
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      const problem = JSON.parse(text) as Problem;
      expect(problem).toMatchObject({ type: expect.any(String), title: expect.any(String), status, code });
      if (status === 401) expect(response.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
      if (status === 503) expect(response.headers.get("retry-after")).not.toBeNull();
      if (paths) {
        const found = (problem.errors ?? []).map((e) => e.path);
        for (const path of paths) expect(found).toContain(path);
        for (const error of problem.errors ?? []) expectClean("validation message", error.message);
      }
    }

    // Log lines: structured, at debug level there is one per request at least, and all clean.
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expectClean("log line", line);
      for (const tokenValue of [ids.acmeToken, ids.globexToken]) expect(line.includes(tokenValue)).toBe(false);
      const entry = JSON.parse(line) as { level: string; event: string };
      expect(entry).toMatchObject({ level: expect.any(String), event: expect.any(String) });
    }
    const requests = lines
      .map((line) => JSON.parse(line) as { event: string; status?: number })
      .filter((e) => e.event === "request");
    expect(requests.map((e) => e.status)).toContain(status);
  });

  it.each([
    ["the db-down connection string", () => `could not reach ${DOWN_URL}`],
    ["a seeded tenant's connection string", () => `${tenants()[0]?.url}`],
    ["a seeded tenant's password alone", () => `auth failed for ${new URL(tenants()[0]?.url ?? "").password}`],
    ["a KV ciphertext", () => `db=${record("globex").db}`],
    ["drizzle's select", () => 'Failed query: select "id", "sku" from "products" where "products"."id" = $1'],
    ["the raw insert", () => "INSERT INTO cart_items (cart_id, product_id, quantity) SELECT"],
    ["a stack frame", () => "Error: boom\n    at handler (src/worker/store/routes.ts:120:11)"],
  ])("the leak detector itself catches %s", (_name, sample) => {
    expect(() => expectClean("sample", sample())).toThrow();
  });

  it("the scenarios cover every status class the Worker answers with", () => {
    const statuses = new Set(scenarios.map((s) => s.status));
    for (const status of [200, 201, 400, 401, 403, 404, 409, 413, 422, 500, 503]) expect(statuses).toContain(status);
  });
});
