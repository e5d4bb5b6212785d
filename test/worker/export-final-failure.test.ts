/**
 * A delete with `finalExport=true` whose export fails answers 502 `export_failed` (the export's
 * failure, not onboarding's) and leaves the tenant as it was: active, served, its database kept.
 * The failure is R2 refusing the upload: the request runs with an EXPORTS binding whose multipart
 * uploads are refused, everything else is miniflare's R2 and the real tenant database.
 *
 * Slugs here start with `xf-`: the control database is shared with every other test file.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminToken, call, json, token } from "./support.ts";

const ADMIN = "http://admin.localhost";
const SLUG = `xf-${Math.random().toString(36).slice(2, 6)}`;

/** miniflare's R2, except that every upload is refused, as during an R2 outage. */
const refusingBucket = new Proxy(env.EXPORTS, {
  get(target, property, receiver) {
    if (property === "createMultipartUpload" || property === "put")
      return async () => {
        throw new Error("R2 unavailable (simulated)");
      };
    const value = Reflect.get(target, property, receiver);
    return typeof value === "function" ? value.bind(target) : value;
  },
}) as R2Bucket;

describe("the final export before a delete fails", () => {
  it("502 export_failed, and the tenant is neither deleted nor taken offline", async () => {
    const admin = await adminToken("xf-ops", "tenants:read tenants:write tenants:delete exports:read");
    const created = await call(`${ADMIN}/v1/tenants`, { ...json({ slug: SLUG, region: "local" }), token: admin });
    expect(created.status, await created.clone().text()).toBe(201);

    const refused = await call(`${ADMIN}/v1/tenants/${SLUG}?confirm=${SLUG}&finalExport=true`, {
      method: "DELETE",
      token: admin,
      env: { EXPORTS: refusingBucket },
    });
    const text = await refused.text();
    expect(refused.status, text).toBe(502);
    const problem = JSON.parse(text) as { code: string; detail: string };
    expect(problem.code).toBe("export_failed");
    expect(problem.detail).toContain("the tenant was not deleted");
    expect(text).not.toMatch(/postgres(ql)?:\/\//i);

    const shown = await call(`${ADMIN}/v1/tenants/${SLUG}`, { token: admin });
    expect(((await shown.json()) as { status: string }).status).toBe("active");
    const exports = (await (await call(`${ADMIN}/v1/tenants/${SLUG}/exports`, { token: admin })).json()) as {
      items: { kind: string; status: string }[];
    };
    expect(exports.items).toEqual([expect.objectContaining({ kind: "final", status: "failed" })]);
    const products = await call(`http://${SLUG}.tenantry.localhost/api/products`, { token: await token(SLUG) });
    expect(products.status).toBe(200);

    // With R2 back, the same delete goes through.
    const deleted = await call(`${ADMIN}/v1/tenants/${SLUG}?confirm=${SLUG}&finalExport=true`, {
      method: "DELETE",
      token: admin,
    });
    expect(deleted.status, await deleted.clone().text()).toBe(200);
    expect(((await deleted.json()) as { status: string }).status).toBe("deleted");
  });
});
