/**
 * Hostile input against the real Worker (issue 16): thousands of randomized requests mixing hosts
 * (tenant hosts and their spellings, platform hosts, unknown and malformed names, the admin host),
 * tokens of other tenants and other subjects (and broken, expired and admin ones), other tenants'
 * and other users' resource ids, admin paths on tenant hosts, and malformed bodies and headers.
 * Every response must be below 500, and none may name an id the caller does not own and did not
 * send: a cart or order of another subject or tenant, another tenant's products, id or database.
 *
 * The generator is a seeded PRNG, so a run is reproduced from the seed it prints (SEED below).
 * About 40% of requests are aimed (a tenant's host, a valid token, another owner's id on a store
 * route); the rest mix everything at random. Admin tokens are never
 * sent to the admin host, and catalogue writes use `HOSTILE-` skus with their own stock, so the
 * run cannot disturb the other test files sharing these tenants.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { mintTenantToken } from "../../src/shared/tokens.ts";
import { adminToken, call, json, seedKv, tenants, token } from "./support.ts";

const REQUESTS = 2_400;
const CONCURRENCY = 8;
/** Fixed, so every run sends the same requests; change it to explore (the run prints it). */
const SEED = 0x16_2026;
const QUIET = { LOG_LEVEL: "error" } as const;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(16)]).join("");
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  return { next, int, pick, hex, uuid, chance: (p: number) => next() < p };
}

const SLUGS = ["acme", "globex", "initech"] as const;
type Slug = (typeof SLUGS)[number];
const SUBJECTS = ["alice-h", "bob-h"] as const;

interface Owned {
  readonly tenant: Slug;
  /** Carts and orders belong to a subject; products are the tenant's, public on its host. */
  readonly subject?: string;
  readonly kind: string;
}

/** Every id worth hiding, with who may see it. */
const secrets = new Map<string, Owned>();
/** The carts, orders and products above, for aiming requests at what the caller does not own. */
const resources: (Owned & { id: string })[] = [];

function remember(id: string, owned: Owned): void {
  secrets.set(id, owned);
  if (owned.kind !== "tenant id" && owned.kind !== "database") resources.push({ id, ...owned });
}
const pools = {
  carts: [] as string[],
  orders: [] as string[],
  /** Products this suite created (stock of its own; safe to put in carts and order). */
  hostileProducts: new Map<Slug, string[]>(),
  /** Seeded products per tenant: only ever sent to other tenants' hosts. */
  seededProducts: new Map<Slug, string[]>(),
};
const tokens = new Map<string, string>();

/** Host → the tenant it serves (the spellings below keep the mapping). */
const TENANT_HOSTS: readonly [string, Slug][] = [
  ["acme.localhost", "acme"],
  ["globex.localhost", "globex"],
  ["shop.initech.localhost", "initech"],
  ["acme.tenantry.localhost", "acme"],
  ["globex.tenantry.localhost", "globex"],
  ["initech.tenantry.localhost", "initech"],
];

async function created(response: Response): Promise<{ id: string }> {
  const text = await response.text();
  expect(response.status, text).toBe(201);
  return JSON.parse(text) as { id: string };
}

async function seedResources(): Promise<void> {
  for (const slug of SLUGS) {
    const record = tenants().find((t) => t.slug === slug);
    if (!record) throw new Error(`no seeded tenant ${slug}`);
    secrets.set(record.id, { tenant: slug, kind: "tenant id" });
    secrets.set(record.database, { tenant: slug, kind: "database" });
    const host = `http://${TENANT_HOSTS.find(([, s]) => s === slug)?.[0]}`;
    const listed = (await (await call(`${host}/api/products?limit=100`)).json()) as { items: { id: string }[] };
    pools.seededProducts.set(
      slug,
      listed.items.map((p) => p.id),
    );
    for (const p of listed.items) remember(p.id, { tenant: slug, kind: "product" });

    const merchant = await token(slug, "merchant-h", { scope: "catalog:write" });
    tokens.set(`${slug}/merchant-h`, merchant);
    const product = await created(
      await call(`${host}/api/products`, {
        ...json({ sku: `HOSTILE-${crypto.randomUUID()}`, name: "Hostile probe", priceCents: 1, stock: 1_000_000 }),
        token: merchant,
      }),
    );
    pools.hostileProducts.set(slug, [product.id]);
    remember(product.id, { tenant: slug, kind: "product" });

    for (const subject of SUBJECTS) {
      const bearer = await token(slug, subject);
      tokens.set(`${slug}/${subject}`, bearer);
      for (let i = 0; i < 2; i++) {
        const cart = await created(await call(`${host}/api/carts`, { method: "POST", token: bearer }));
        remember(cart.id, { tenant: slug, subject, kind: "cart" });
        pools.carts.push(cart.id);
        await created(
          await call(`${host}/api/carts/${cart.id}/items`, {
            ...json({ productId: product.id, quantity: 1 }),
            token: bearer,
          }),
        );
        if (i === 1) {
          const order = await created(
            await call(`${host}/api/orders`, { ...json({ cartId: cart.id }), token: bearer }),
          );
          remember(order.id, { tenant: slug, subject, kind: "order" });
          pools.orders.push(order.id);
        }
      }
    }
  }
}

interface Probe {
  readonly url: string;
  readonly init: RequestInit & { token?: string };
  /** The tenant the host serves, if any. */
  readonly hostTenant?: Slug;
  /** The tenant and subject of a valid tenant token, if one is sent. */
  readonly caller?: { tenant: Slug; subject: string };
}

type Rng = ReturnType<typeof prng>;

function chooseHost(r: Rng): { host: string; tenant?: Slug } {
  const roll = r.int(10);
  if (roll < 6) {
    const [host, tenant] = r.pick(TENANT_HOSTS);
    const spelled = r.pick([
      host,
      host.toUpperCase(),
      `${host}.`,
      `${host}:8787`,
      host.replace(/^./, (c) => c.toUpperCase()),
    ]);
    return { host: spelled, tenant };
  }
  if (roll === 6) return { host: "admin.localhost" };
  if (roll === 7)
    return { host: r.pick([`${r.hex(6)}.localhost`, `x${r.hex(4)}.tenantry.localhost`, `${r.hex(8)}.example.com`]) };
  return {
    host: r.pick([
      "127.0.0.1",
      "[::1]",
      "localhost",
      "a..b.localhost",
      "ab.tenantry.localhost",
      "a--b.tenantry.localhost",
      "xn--bcher-kva.localhost",
      "bücher.localhost",
      `${"a".repeat(63)}.${"b".repeat(63)}.localhost`,
      "0x7f.1",
      "-acme.localhost",
      "acme.localhost.tenantry.localhost",
      "shop.acme.tenantry.localhost",
    ]),
  };
}

function anyId(r: Rng): string {
  const roll = r.int(10);
  if (roll < 3) return r.pick(pools.carts);
  if (roll < 5) return r.pick(pools.orders);
  if (roll < 7) return r.pick([...pools.seededProducts.values(), ...pools.hostileProducts.values()].flat());
  if (roll < 8) return r.uuid();
  return r.pick(["1 OR 1=1", "..%2f..%2fv1%2ftenants", "%00", "' OR ''='", "null", r.hex(200), "exp_0123456789abcdef"]);
}

function choosePath(r: Rng): string {
  const id = anyId(r);
  return r.pick([
    "/api/products",
    `/api/products?limit=${r.pick(["1", "100", "0", "-1", "1e9", "abc"])}&after=${encodeURIComponent(anyId(r))}`,
    `/api/products/${id}`,
    "/api/carts",
    `/api/carts/${id}`,
    `/api/carts/${id}/items`,
    "/api/orders",
    `/api/orders/${id}`,
    `/exports/${r.pick(["exp_0123456789abcdef", id])}?expires=${r.int(2e9)}&sig=${r.hex(64)}`,
    "/v1/tenants",
    `/v1/tenants/${r.pick(SLUGS)}`,
    `/v1/tenants/${r.pick(SLUGS)}/suspend`,
    "/v1/audit",
    "/v1/reconcile",
    "/v1/migrations/runs",
    "/openapi.json",
    "/healthz",
    "/",
    "/api/../v1/tenants",
    `/${"-eyJ".repeat(r.int(2_000))}`,
  ]);
}

async function chooseToken(r: Rng, hostIsAdmin: boolean): Promise<{ header?: string; caller?: Probe["caller"] }> {
  const roll = r.int(12);
  if (roll < 5) {
    const slug = r.pick(SLUGS);
    const subject = r.pick([...SUBJECTS, "merchant-h"]);
    return { header: `Bearer ${tokens.get(`${slug}/${subject}`)}`, caller: { tenant: slug, subject } };
  }
  if (roll === 5) return {};
  if (roll === 6 && !hostIsAdmin) return { header: `Bearer ${await adminToken("hostile")}` };
  if (roll === 7) {
    const expired = await mintTenantToken({
      secret: env.JWT_SECRET as string,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      tenant: r.pick(SLUGS),
      sub: "alice-h",
      ttlSeconds: -3_600,
    });
    return { header: `Bearer ${expired}` };
  }
  if (roll === 8) return { header: `Bearer ${await token("nobody-there", "alice-h")}` };
  return {
    header: r.pick([
      "Bearer ",
      "Bearer garbage",
      `Bearer eyJ${r.hex(40)}.${r.hex(40)}.${r.hex(40)}`,
      "Basic YWxpY2U6c2VjcmV0",
      `bearer ${tokens.get("acme/alice-h")}x`,
      `Bearer ${tokens.get("globex/bob-h")?.split(".").slice(0, 2).join(".")}.`,
    ]),
  };
}

function chooseBody(r: Rng, path: string, hostTenant: Slug | undefined): { body?: BodyInit; type?: string } {
  const roll = r.int(10);
  if (roll < 5) {
    const productPool = [
      ...[...pools.hostileProducts.values()].flat(),
      ...[...pools.seededProducts.entries()].filter(([slug]) => slug !== hostTenant).flatMap(([, ids]) => ids),
      r.uuid(),
    ];
    let value: unknown;
    if (path.endsWith("/items")) value = { productId: r.pick(productPool), quantity: r.pick([1, 2, 0, -1, 1e9, "1"]) };
    else if (path.startsWith("/api/orders")) value = { cartId: r.pick([...pools.carts, r.uuid(), "x"]) };
    else if (path.startsWith("/api/products"))
      value = {
        sku: `HOSTILE-${r.hex(8)}`,
        name: "hostile",
        priceCents: r.pick([1, -5, "9"]),
        stock: 5,
        admin: r.chance(0.3),
      };
    else value = { slug: r.pick([...SLUGS, "hostile-x"]), region: "local", tenant: r.pick(SLUGS) };
    return { body: JSON.stringify(value), type: "application/json" };
  }
  if (roll < 8) {
    return {
      body: r.pick([
        "{",
        "null",
        "[]",
        '{"cartId":',
        `${"[".repeat(5_000)}${"]".repeat(5_000)}`,
        '{"quantity":1e999}',
        '{"__proto__":{"admin":true}}',
        "\u0000\u0001\u0002",
        "x".repeat(r.int(10_000)),
      ]),
      type: r.pick([
        "application/json",
        "text/plain",
        "application/json; charset=utf-16",
        "multipart/form-data; boundary=x",
      ]),
    };
  }
  if (roll === 8)
    return { body: crypto.getRandomValues(new Uint8Array(r.int(4_096) + 1)), type: "application/octet-stream" };
  return {};
}

/**
 * A request aimed at isolation: a tenant's own host, a valid token (of that tenant, or another),
 * and a store route naming a cart, order or product the caller does not own.
 */
function targetedProbe(r: Rng): Probe {
  const tenant = r.pick(SLUGS);
  const [host] = r.pick(TENANT_HOSTS.filter(([, slug]) => slug === tenant));
  const callerTenant = r.chance(0.75) ? tenant : r.pick(SLUGS.filter((slug) => slug !== tenant));
  const subject = r.pick([...SUBJECTS, "merchant-h"]);
  const caller = { tenant: callerTenant, subject };
  const foreign = r.pick(resources.filter((x) => !mayReveal(x, { url: "", init: {}, hostTenant: tenant, caller })));
  const ownProduct = r.pick(pools.hostileProducts.get(tenant) ?? [r.uuid()]);
  const send = (method: string, path: string, body?: unknown): Probe => ({
    url: `http://${host}${path}`,
    init: {
      method,
      headers: {
        authorization: `Bearer ${tokens.get(`${callerTenant}/${subject}`)}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    },
    hostTenant: tenant,
    caller,
  });
  if (foreign.kind === "cart") {
    return r.pick([
      () => send("GET", `/api/carts/${foreign.id}`),
      () => send("POST", `/api/carts/${foreign.id}/items`, { productId: ownProduct, quantity: 1 }),
      () => send("POST", "/api/orders", { cartId: foreign.id }),
    ])();
  }
  if (foreign.kind === "order") return send("GET", `/api/orders/${foreign.id}`);
  return r.pick([
    () => send("GET", `/api/products/${foreign.id}`),
    () => send("POST", `/api/carts/${r.pick(pools.carts)}/items`, { productId: foreign.id, quantity: 1 }),
  ])();
}

async function probe(r: Rng): Promise<Probe> {
  if (r.chance(0.4)) return targetedProbe(r);
  const chosen = chooseHost(r);
  // A name the URL parser itself refuses never reaches a Worker: send an unknown host instead.
  const { host, tenant } = URL.canParse(`http://${chosen.host}/`)
    ? chosen
    : { host: "unparsable.localhost", tenant: undefined };
  const path = choosePath(r);
  const method = r.pick(["GET", "GET", "GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
  const { header, caller } = await chooseToken(r, host === "admin.localhost");
  const headers = new Headers();
  if (header !== undefined) headers.set("authorization", header);
  if (r.chance(0.2)) headers.set("x-request-id", r.pick([r.uuid(), "forged", "a".repeat(300)]));
  if (r.chance(0.1)) headers.set("x-forwarded-host", r.pick(["globex.localhost", "admin.localhost"]));
  if (r.chance(0.1)) headers.set("x-tenant", r.pick(SLUGS));
  let body: BodyInit | undefined;
  if (method !== "GET" && method !== "HEAD") {
    const chosen = chooseBody(r, path, tenant);
    body = chosen.body;
    if (chosen.type) headers.set("content-type", chosen.type);
  }
  return {
    url: `http://${host}${path}`,
    init: { method, headers, ...(body !== undefined ? { body } : {}) },
    ...(tenant ? { hostTenant: tenant } : {}),
    ...(caller ? { caller } : {}),
  };
}

/** Whether the caller may see `owned`: its own carts and orders, the host tenant's products. */
function mayReveal(owned: Owned, request: Probe): boolean {
  if (owned.kind === "product") return owned.tenant === request.hostTenant;
  if (owned.subject === undefined) return false;
  return (
    request.hostTenant === owned.tenant &&
    request.caller?.tenant === owned.tenant &&
    request.caller.subject === owned.subject
  );
}

interface Tally {
  requests: number;
  /** Answers by problem code (or status, for bodies without one), printed for a sense of coverage. */
  answers: Map<string, number>;
  serverErrors: string[];
  leaks: string[];
}

async function runOne(request: Probe, tally: Tally): Promise<void> {
  const response = await call(request.url, { ...request.init, env: QUIET });
  const text = await response.text();
  tally.requests += 1;
  const code = /"code":"([a-z_]+)"/.exec(text)?.[1] ?? String(response.status);
  tally.answers.set(code, (tally.answers.get(code) ?? 0) + 1);
  const where = `${request.init.method} ${request.url.slice(0, 120)}`;
  if (response.status >= 500) tally.serverErrors.push(`${response.status} ${where}: ${text.slice(0, 200)}`);
  // problem+json's `instance` echoes the request path, which holds whatever ids the caller sent.
  const body = text.replace(/"instance":"(?:[^"\\]|\\.)*"/g, '"instance":""');
  const visible = `${body}\n${[...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}`;
  for (const [id, owned] of secrets) {
    if (visible.includes(id) && !mayReveal(owned, request)) {
      tally.leaks.push(`${where} reveals ${owned.tenant}/${owned.subject ?? "-"} ${owned.kind} ${id}`);
    }
  }
}

beforeAll(async () => {
  await seedKv();
  await seedResources();
}, 120_000);

describe("hostile input against the Worker", () => {
  it(`answers ${REQUESTS} randomized requests with no 5xx and no foreign id`, async () => {
    const r = prng(SEED);
    // Generated in order from the one PRNG (reproducible), then sent with bounded concurrency.
    const requests: Probe[] = [];
    for (let i = 0; i < REQUESTS; i++) requests.push(await probe(r));
    const tally: Tally = { requests: 0, answers: new Map(), serverErrors: [], leaks: [] };
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const request = requests[next++] as Probe;
          await runOne(request, tally);
        }
      }),
    );
    console.log(
      `hostile-input suite: seed=${SEED} requests=${tally.requests} 5xx=${tally.serverErrors.length} leaks=${tally.leaks.length}`,
      `answers=${JSON.stringify(Object.fromEntries([...tally.answers].sort(([, a], [, b]) => b - a)))}`,
    );
    expect(tally.requests).toBe(REQUESTS);
    expect(tally.serverErrors.slice(0, 5)).toEqual([]);
    expect(tally.leaks.slice(0, 5)).toEqual([]);
  }, 300_000);
});
