/**
 * Changing a tenant's catalogue needs the `catalog:write` scope (issue 16, finding 4): any token
 * of the tenant (every shopper has one) is refused 403 `forbidden` with RFC 6750's
 * `insufficient_scope`, and creates nothing; a token of another tenant is still `tenant_mismatch`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { hasScope } from "../../src/worker/auth/scope.ts";
import { call, json, seedKv, token } from "./support.ts";

const ACME = "http://acme.localhost";

beforeAll(seedKv);

async function skus(): Promise<string[]> {
  const response = await call(`${ACME}/api/products?limit=100`);
  const listed = (await response.json()) as { items: { sku: string }[] };
  return listed.items.map((p) => p.sku);
}

function create(sku: string, bearer?: string): Promise<Response> {
  return call(`${ACME}/api/products`, {
    ...json({ sku, name: "Scope probe", priceCents: 1 }),
    ...(bearer ? { token: bearer } : {}),
  });
}

describe("POST /api/products", () => {
  it.each([
    ["no scope", undefined],
    ["another scope", "catalog:read"],
    ["a longer name", "catalog:writer"],
    ["another case", "Catalog:Write"],
    ["comma-separated", "openid,catalog:write"],
  ])("is 403 forbidden for a shopper's token (%s), and creates nothing", async (_name, scope) => {
    const sku = `SCOPE-${crypto.randomUUID()}`;
    const response = await create(sku, await token("acme", "shopper", scope ? { scope } : {}));
    expect(response.status).toBe(403);
    const problem = (await response.json()) as { code: string };
    expect(problem.code).toBe("forbidden");
    expect(response.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(await skus()).not.toContain(sku);
  });

  it("creates the product with catalog:write among the token's scopes", async () => {
    const sku = `SCOPE-${crypto.randomUUID()}`;
    const response = await create(sku, await token("acme", "merchant", { scope: "openid catalog:write" }));
    expect(response.status).toBe(201);
    expect(await skus()).toContain(sku);
  });

  it("still answers 401 without a token and tenant_mismatch for another tenant's token", async () => {
    expect((await create("SCOPE-NONE")).status).toBe(401);
    const other = await create("SCOPE-OTHER", await token("globex", "merchant", { scope: "catalog:write" }));
    expect(other.status).toBe(403);
    expect(((await other.json()) as { code: string }).code).toBe("tenant_mismatch");
  });
});

describe("hasScope", () => {
  it.each([
    ["catalog:write", true],
    ["openid catalog:write profile", true],
    ["catalog:writes", false],
    ["", false],
    [undefined, false],
    [["catalog:write"], false],
  ])("%j → %s", (claim, expected) => {
    expect(hasScope(claim, "catalog:write")).toBe(expected);
  });
});
