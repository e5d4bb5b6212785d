import { beforeAll, describe, expect, it } from "vitest";
import { call, json, seedKv, token } from "./support.ts";

beforeAll(seedKv);

describe("fetch: each host answers from its own tenant's database", () => {
  it("lists only acme's products on acme and only globex's on globex", async () => {
    const acme = await call("http://acme.localhost/api/products");
    expect(acme.status).toBe(200);
    const acmeSkus = ((await acme.json()) as { items: { sku: string }[] }).items.map((p) => p.sku);
    const globex = await call("http://globex.localhost/api/products");
    expect(globex.status).toBe(200);
    const globexSkus = ((await globex.json()) as { items: { sku: string }[] }).items.map((p) => p.sku);
    // Other test files add products to these tenants too: check membership, not the exact list.
    expect(acmeSkus).toEqual(expect.arrayContaining(["ACME-ANVIL", "ACME-MAGNET", "ACME-SKATES"]));
    expect(globexSkus).toEqual(expect.arrayContaining(["GLOBEX-HAMMOCK", "GLOBEX-SAUCE"]));
    expect(acmeSkus.filter((sku) => sku.startsWith("GLOBEX-"))).toEqual([]);
    expect(globexSkus.filter((sku) => sku.startsWith("ACME-"))).toEqual([]);
    expect(acmeSkus.filter((sku) => globexSkus.includes(sku))).toEqual([]);
  });

  it("a cart created on acme is 404 on globex, and acme's token on globex is 403 tenant_mismatch", async () => {
    const acmeToken = await token("acme");
    const created = await call("http://acme.localhost/api/carts", { method: "POST", token: acmeToken });
    expect(created.status).toBe(201);
    const cart = (await created.json()) as { id: string };
    const globexToken = await token("globex");
    const other = await call(`http://globex.localhost/api/carts/${cart.id}`, { token: globexToken });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { code: string }).code).toBe("not_found");
    const mismatch = await call(`http://globex.localhost/api/carts/${cart.id}`, { token: acmeToken });
    expect(mismatch.status).toBe(403);
    expect(mismatch.headers.get("content-type")).toContain("application/problem+json");
    expect(((await mismatch.json()) as { code: string }).code).toBe("tenant_mismatch");
  });

  it("checks out a cart in one batch", async () => {
    const t = await token("acme", "bob");
    const products = (await (await call("http://acme.localhost/api/products")).json()) as {
      items: { id: string; sku: string; stock: number; priceCents: number }[];
    };
    const anvil = products.items.find((p) => p.sku === "ACME-ANVIL");
    expect(anvil).toBeDefined();
    const cart = (await (await call("http://acme.localhost/api/carts", { method: "POST", token: t })).json()) as {
      id: string;
    };
    const added = await call(`http://acme.localhost/api/carts/${cart.id}/items`, {
      ...json({ productId: anvil?.id, quantity: 2 }),
      token: t,
    });
    expect(added.status).toBe(201);
    const order = await call("http://acme.localhost/api/orders", { ...json({ cartId: cart.id }), token: t });
    expect(order.status).toBe(201);
    const body = (await order.json()) as { id: string; totalCents: number };
    expect(body.totalCents).toBe(2 * (anvil?.priceCents ?? 0));
    const fetched = await call(`http://acme.localhost/api/orders/${body.id}`, { token: t });
    expect(fetched.status).toBe(200);
    expect(((await fetched.json()) as { items: unknown[] }).items).toHaveLength(1);
  });
});
