/**
 * The cross-tenant isolation matrix, route by route. Resources are created on acme with alice's
 * token; then every route is tried from globex (its own token: 404, acme's token: 403
 * `tenant_mismatch`) and by another user of acme (404). Positive controls show that each id is real
 * and reachable by its owner, so the 404s are not vacuous.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { call, json, seedKv, tenant, token } from "./support.ts";

interface Ids {
  /** A product created on acme through the API. */
  productId: string;
  productSku: string;
  /** alice's open cart on acme, holding one of the product. */
  cartId: string;
  /** alice's ordered cart on acme, and its order. */
  orderedCartId: string;
  orderId: string;
  /** A product of globex (so item bodies are valid there). */
  globexProductId: string;
}

interface Route {
  readonly name: string;
  readonly method: "GET" | "POST";
  readonly path: (ids: Ids) => string;
  readonly body?: (ids: Ids) => unknown;
  readonly authenticated: boolean;
}

const ids = {} as Ids;

/** Every route of the store API, with acme's ids and a body that is valid on acme. */
const routes: readonly Route[] = [
  { name: "GET /api/products", method: "GET", path: () => "/api/products", authenticated: false },
  { name: "GET /api/products/:id", method: "GET", path: (i) => `/api/products/${i.productId}`, authenticated: false },
  {
    name: "POST /api/products",
    method: "POST",
    path: () => "/api/products",
    body: () => ({ sku: `MATRIX-${crypto.randomUUID()}`, name: "Matrix probe", priceCents: 1 }),
    authenticated: true,
  },
  { name: "POST /api/carts", method: "POST", path: () => "/api/carts", authenticated: true },
  { name: "GET /api/carts/:id", method: "GET", path: (i) => `/api/carts/${i.cartId}`, authenticated: true },
  {
    name: "POST /api/carts/:id/items",
    method: "POST",
    path: (i) => `/api/carts/${i.cartId}/items`,
    body: (i) => ({ productId: i.productId, quantity: 1 }),
    authenticated: true,
  },
  {
    name: "POST /api/orders",
    method: "POST",
    path: () => "/api/orders",
    body: (i) => ({ cartId: i.cartId }),
    authenticated: true,
  },
  { name: "GET /api/orders/:id", method: "GET", path: (i) => `/api/orders/${i.orderId}`, authenticated: true },
];
const authenticated = routes.filter((r) => r.authenticated);

function route(name: string): Route {
  const found = routes.find((r) => r.name === name);
  if (!found) throw new Error(`no route ${name}`);
  return found;
}

function send(host: string, route: Route, tokenValue: string | undefined, body?: unknown): Promise<Response> {
  const payload = body ?? route.body?.(ids);
  return call(`http://${host}${route.path(ids)}`, {
    method: route.method,
    ...(payload === undefined
      ? {}
      : { body: JSON.stringify(payload), headers: { "content-type": "application/json" } }),
    ...(tokenValue ? { token: tokenValue } : {}),
  });
}

async function expectProblem(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const body = (await response.json()) as { code: string; status: number };
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
}

async function created<T>(response: Response): Promise<T> {
  expect(response.status).toBe(201);
  return (await response.json()) as T;
}

interface ListedProduct {
  id: string;
  sku: string;
  name: string;
}

/** Every product listed on `host`, following `next` pages. */
const list = async (host: string, init: { token?: string } = {}): Promise<ListedProduct[]> => {
  const all: ListedProduct[] = [];
  let after: string | undefined;
  do {
    const response = await call(`http://${host}/api/products?limit=100${after ? `&after=${after}` : ""}`, init);
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: ListedProduct[]; next?: string };
    all.push(...page.items);
    after = page.next;
  } while (after);
  return all;
};

let alice: string;
let bob: string;
let globexAlice: string;

beforeAll(async () => {
  await seedKv();
  alice = await token("acme", "alice", { scope: "catalog:write" });
  bob = await token("acme", "bob");
  // Same subject on globex: isolation must come from the tenant, not from the user name.
  globexAlice = await token("globex", "alice");

  ids.productSku = `MATRIX-ACME-${crypto.randomUUID()}`;
  const product = await created<{ id: string }>(
    await call("http://acme.localhost/api/products", {
      ...json({ sku: ids.productSku, name: "Acme Matrix Widget", priceCents: 500, stock: 1000 }),
      token: alice,
    }),
  );
  ids.productId = product.id;

  const cart = await created<{ id: string }>(
    await call("http://acme.localhost/api/carts", { method: "POST", token: alice }),
  );
  ids.cartId = cart.id;
  await created(
    await call(`http://acme.localhost/api/carts/${ids.cartId}/items`, {
      ...json({ productId: ids.productId, quantity: 2 }),
      token: alice,
    }),
  );

  const ordered = await created<{ id: string }>(
    await call("http://acme.localhost/api/carts", { method: "POST", token: alice }),
  );
  ids.orderedCartId = ordered.id;
  await created(
    await call(`http://acme.localhost/api/carts/${ids.orderedCartId}/items`, {
      ...json({ productId: ids.productId, quantity: 1 }),
      token: alice,
    }),
  );
  const order = await created<{ id: string }>(
    await call("http://acme.localhost/api/orders", { ...json({ cartId: ids.orderedCartId }), token: alice }),
  );
  ids.orderId = order.id;

  const globexProducts = (await (await call("http://globex.localhost/api/products")).json()) as {
    items: { id: string }[];
  };
  const first = globexProducts.items[0];
  if (!first) throw new Error("globex has no products");
  ids.globexProductId = first.id;
});

describe("control: acme's resources are reachable by their owner on acme", () => {
  it.each([
    ["GET /api/products/:id", () => `/api/products/${ids.productId}`],
    ["GET /api/carts/:id", () => `/api/carts/${ids.cartId}`],
    ["GET /api/orders/:id", () => `/api/orders/${ids.orderId}`],
  ])("%s → 200", async (_name, path) => {
    const response = await call(`http://acme.localhost${path()}`, { token: alice });
    expect(response.status).toBe(200);
  });

  it("acme's list has the product", async () => {
    expect((await list("acme.localhost")).map((p) => p.id)).toContain(ids.productId);
  });
});

describe("acme's ids on globex's host with globex's own token are 404", () => {
  const byId: readonly { name: string; route: Route; body?: () => unknown }[] = [
    { name: "GET /api/products/:id", route: route("GET /api/products/:id") },
    { name: "GET /api/carts/:id", route: route("GET /api/carts/:id") },
    { name: "POST /api/carts/:id/items (acme's product)", route: route("POST /api/carts/:id/items") },
    {
      name: "POST /api/carts/:id/items (globex's product)",
      route: route("POST /api/carts/:id/items"),
      body: () => ({ productId: ids.globexProductId, quantity: 1 }),
    },
    { name: "POST /api/orders (acme's open cart)", route: route("POST /api/orders") },
    {
      name: "POST /api/orders (acme's ordered cart)",
      route: route("POST /api/orders"),
      body: () => ({ cartId: ids.orderedCartId }),
    },
    { name: "GET /api/orders/:id", route: route("GET /api/orders/:id") },
  ];

  it.each(byId)("$name → 404 not_found", async ({ route, body }) => {
    await expectProblem(await send("globex.localhost", route, globexAlice, body?.()), 404, "not_found");
  });

  it("a product created on acme is not in globex's list", async () => {
    // By id and name as well as sku: an id or a name is what would show a shared table.
    const globex = await list("globex.localhost");
    expect(globex.map((p) => p.id)).not.toContain(ids.productId);
    expect(globex.map((p) => p.sku)).not.toContain(ids.productSku);
    expect(globex.map((p) => p.name)).not.toContain("Acme Matrix Widget");
    expect(globex.some((p) => p.sku.startsWith("ACME-"))).toBe(false);
  });

  it("acme's product id as a cart item on globex is refused, not linked across databases", async () => {
    const cart = await created<{ id: string }>(
      await call("http://globex.localhost/api/carts", { method: "POST", token: globexAlice }),
    );
    const response = await call(`http://globex.localhost/api/carts/${cart.id}/items`, {
      ...json({ productId: ids.productId, quantity: 1 }),
      token: globexAlice,
    });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { code: string; errors: { path: string }[] };
    expect(body.code).toBe("validation_failed");
    expect(body.errors.map((e) => e.path)).toContain("productId");
  });

  it("the same sku can be created on another tenant: the products tables are not shared", async () => {
    // On initech, not globex: fetch-isolation.test.ts checks that acme and globex share no sku.
    const response = await call("http://shop.initech.localhost/api/products", {
      ...json({ sku: ids.productSku, name: "Initech namesake", priceCents: 1 }),
      token: await token("initech", "alice", { scope: "catalog:write" }),
    });
    const product = await created<{ id: string; sku: string }>(response);
    expect(product.id).not.toBe(ids.productId);
    const onAcme = (await (await call(`http://acme.localhost/api/products/${ids.productId}`)).json()) as {
      name: string;
    };
    expect(onAcme.name).toBe("Acme Matrix Widget");
  });

  it("acme's rows are not in globex's database at all (checked with globex's own role)", async () => {
    neonConfig.fetchEndpoint = inject("gatewayUrl");
    const sql = neon(tenant("globex").url);
    const [row] = (await sql.query(
      `SELECT
         (SELECT count(*)::int FROM products WHERE id = $1) AS products,
         (SELECT count(*)::int FROM carts WHERE id = ANY($2::uuid[])) AS carts,
         (SELECT count(*)::int FROM orders WHERE id = $3) AS orders`,
      [ids.productId, [ids.cartId, ids.orderedCartId], ids.orderId],
    )) as { products: number; carts: number; orders: number }[];
    expect(row).toEqual({ products: 0, carts: 0, orders: 0 });
  });
});

describe("a token of one tenant on another tenant's host is 403 tenant_mismatch", () => {
  const pairs = [
    { from: "acme", host: "globex.localhost" },
    { from: "globex", host: "acme.localhost" },
    { from: "acme", host: "shop.initech.localhost" },
    { from: "initech", host: "globex.tenantry.localhost" },
  ];
  const matrix = pairs.flatMap((pair) => authenticated.map((route) => ({ ...pair, route, name: route.name })));

  it.each(matrix)("$from's token on $host: $name → 403", async ({ from, host, route }) => {
    await expectProblem(await send(host, route, await token(from, "alice")), 403, "tenant_mismatch");
  });

  it("the refused write created nothing on globex", async () => {
    const sku = `MISMATCH-${crypto.randomUUID()}`;
    const response = await call("http://globex.localhost/api/products", {
      ...json({ sku, name: "Should not exist", priceCents: 1 }),
      token: alice,
    });
    await expectProblem(response, 403, "tenant_mismatch");
    expect((await list("globex.localhost")).map((p) => p.sku)).not.toContain(sku);
  });

  it("public reads on globex ignore acme's token and answer from globex only", async () => {
    const items = await list("globex.localhost", { token: alice });
    expect(items.map((p) => p.id)).not.toContain(ids.productId);
    expect(items.map((p) => p.name)).not.toContain("Acme Matrix Widget");
    expect(items.some((p) => p.sku.startsWith("ACME-"))).toBe(false);
    await expectProblem(await send("globex.localhost", route("GET /api/products/:id"), alice), 404, "not_found");
  });
});

describe("another user of the same tenant cannot see alice's cart or order", () => {
  const others: readonly { name: string; route: Route; body?: () => unknown }[] = [
    { name: "GET /api/carts/:id", route: route("GET /api/carts/:id") },
    { name: "POST /api/carts/:id/items", route: route("POST /api/carts/:id/items") },
    { name: "POST /api/orders (alice's open cart)", route: route("POST /api/orders") },
    {
      name: "POST /api/orders (alice's ordered cart)",
      route: route("POST /api/orders"),
      body: () => ({ cartId: ids.orderedCartId }),
    },
    { name: "GET /api/orders/:id", route: route("GET /api/orders/:id") },
    {
      name: "GET /api/carts/:id (alice's ordered cart)",
      route: { name: "", method: "GET", path: (i) => `/api/carts/${i.orderedCartId}`, authenticated: true },
    },
  ];

  it.each(others)("bob: $name → 404 not_found", async ({ route, body }) => {
    await expectProblem(await send("acme.localhost", route, bob, body?.()), 404, "not_found");
  });

  it("alice's cart is untouched by bob's attempts: still open, same items", async () => {
    const response = await call(`http://acme.localhost/api/carts/${ids.cartId}`, { token: alice });
    expect(response.status).toBe(200);
    const cart = (await response.json()) as { status: string; items: { productId: string; quantity: number }[] };
    expect(cart.status).toBe("open");
    expect(cart.items).toEqual([expect.objectContaining({ productId: ids.productId, quantity: 2 })]);
  });

  it("alice's order is still hers", async () => {
    const response = await call(`http://acme.localhost/api/orders/${ids.orderId}`, { token: alice });
    expect(response.status).toBe(200);
    const order = (await response.json()) as { cartId: string; items: unknown[] };
    expect(order.cartId).toBe(ids.orderedCartId);
    expect(order.items).toHaveLength(1);
  });

  it("a subject that differs only in case is another user", async () => {
    const alicE = await token("acme", "Alice");
    await expectProblem(await send("acme.localhost", route("GET /api/carts/:id"), alicE), 404, "not_found");
  });

  it("the same subject on globex is another user too (acme's cart is 404 there)", async () => {
    await expectProblem(await send("globex.localhost", route("GET /api/carts/:id"), globexAlice), 404, "not_found");
  });
});
