import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import { call, json, seedKv } from "./support.ts";

const adminToken = (scope = ALL_ADMIN_SCOPES) =>
  mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub: "ops",
    scope,
  });

describe("admin API smoke", () => {
  it("creates a tenant that then answers on its domain, and deletes it", async () => {
    await seedKv();
    const token = await adminToken();
    const created = await call("http://admin.localhost/v1/tenants", {
      ...json({ slug: "smoke-co", region: "eu-central", domains: ["shop.smoke.localhost"] }),
      token,
    });
    const body = (await created.json()) as { status: string; domains: string[] };
    expect(created.status, JSON.stringify(body)).toBe(201);
    expect(body.status).toBe("active");
    const products = await call("http://shop.smoke.localhost/api/products");
    expect(products.status).toBe(200);
    expect(await products.json()).toEqual({ items: [] });
    const deleted = await call("http://admin.localhost/v1/tenants/smoke-co?confirm=smoke-co", {
      method: "DELETE",
      token,
    });
    expect(deleted.status).toBe(200);
    expect((await call("http://shop.smoke.localhost/api/products")).status).toBe(404);
  });
});
