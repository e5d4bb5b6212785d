/**
 * Custom domains through the admin API with Cloudflare configured (per request, against the fake
 * Cloudflare API of global-setup.ts, which activates a hostname 1.5 s after creation): a new domain
 * is pending and answers 404 at the edge until `domains status` sees it active, then serves the
 * tenant; a `.invalid` one stays pending with its validation error and alerts the webhook once;
 * removal makes it 404 again and leaves no custom hostname; reserved names are 422. Slugs here
 * start with `dm-`.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { adminToken, call, json, seedKv, sleep } from "./support.ts";

const ADMIN = "http://admin.localhost";
const cloudflare = (): Partial<Env> => ({
  CLOUDFLARE_ZONE_ID: "zone-worker-test",
  CLOUDFLARE_API_URL: inject("cloudflareUrl"),
  CLOUDFLARE_API_TOKEN: inject("cloudflareToken"),
  ALERT_WEBHOOK_URL: inject("alertSinkUrl"),
});
let admin = "";

interface DomainView {
  hostname: string;
  status: string;
  customHostname: boolean;
  validationErrors: string[];
  dns: { records: { type: string; name: string; value: string }[] } | null;
}

async function adminCall(path: string, init: RequestInit = {}): Promise<Response> {
  return call(`${ADMIN}${path}`, { ...init, token: admin, env: cloudflare() });
}

async function status(slug: string): Promise<DomainView[]> {
  const response = await adminCall(`/v1/tenants/${slug}/domains`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { items: DomainView[] }).items;
}

async function zoneHostnames(): Promise<string[]> {
  const response = await fetch(`${inject("cloudflareUrl")}/zones/zone-worker-test/custom_hostnames?per_page=50`, {
    headers: { authorization: `Bearer ${inject("cloudflareToken")}` },
  });
  return ((await response.json()) as { result: { hostname: string }[] }).result.map((h) => h.hostname);
}

beforeAll(async () => {
  await seedKv();
  admin = await adminToken("domains-ops");
  expect(env.CLOUDFLARE_ZONE_ID).toBe("");
});

describe("custom domains with Cloudflare configured", () => {
  const host = "shop.dm-acmecorp.localhost";

  it("is pending (404 at the edge) until active, then serves the tenant; removal makes it 404 again", async () => {
    const added = await adminCall("/v1/tenants/acme/domains", json({ domain: host }));
    expect(added.status).toBe(200);
    const domain = ((await added.json()) as { domainDetails: DomainView[] }).domainDetails.find(
      (d) => d.hostname === host,
    );
    expect(domain).toMatchObject({ status: "pending", customHostname: true });
    expect(domain?.dns?.records.map((r) => r.type)).toEqual(expect.arrayContaining(["CNAME", "TXT"]));
    expect((await call(`http://${host}/api/products`)).status).toBe(404);

    let current: DomainView | undefined;
    for (let i = 0; i < 40 && current?.status !== "active"; i++) {
      await sleep(250);
      current = (await status("acme")).find((d) => d.hostname === host);
    }
    expect(current?.status).toBe("active");
    const served = await call(`http://${host}/api/products`);
    expect(served.status).toBe(200);
    const skus = ((await served.json()) as { items: { sku: string }[] }).items.map((p) => p.sku);
    expect(skus).toContain("ACME-ANVIL");

    expect((await adminCall(`/v1/tenants/acme/domains/${host}`, { method: "DELETE" })).status).toBe(200);
    expect((await call(`http://${host}/api/products`)).status).toBe(404);
    expect(await zoneHostnames()).not.toContain(host);
  });

  it("keeps a .invalid hostname pending with its validation error, alerting the webhook once", async () => {
    const broken = "shop.dm-broken.invalid";
    expect((await adminCall("/v1/tenants/globex/domains", json({ domain: broken }))).status).toBe(200);
    await sleep(1_600);
    const domain = (await status("globex")).find((d) => d.hostname === broken);
    expect(domain?.status).toBe("pending");
    expect(domain?.validationErrors.length).toBeGreaterThan(0);
    await status("globex");
    const received = (await (await fetch(inject("alertSinkUrl"))).json()) as { event: string; domain: string }[];
    expect(received.filter((a) => a.domain === broken)).toEqual([
      expect.objectContaining({ event: "domain_validation_failed", domain: broken }),
    ]);
    expect((await call(`http://${broken}/api/products`)).status).toBe(404);
    expect((await adminCall(`/v1/tenants/globex/domains/${broken}`, { method: "DELETE" })).status).toBe(200);
  });

  it("documents the domain routes in the OpenAPI document, with the quota and Cloudflare refusals", async () => {
    const doc = (await (await call(`${ADMIN}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    expect(doc.paths["/v1/tenants/{slug}/domains"]?.get?.responses).toHaveProperty("200");
    expect(doc.paths["/v1/tenants/{slug}/domains"]?.post?.responses).toHaveProperty("409");
    expect(doc.paths["/v1/tenants/{slug}/domains/{domain}/verify"]?.post?.responses).toHaveProperty("502");
    expect(doc.components.schemas.Problem?.properties).toHaveProperty("quota");
    expect(doc.components.schemas.Domain?.properties).toHaveProperty("dns");
  });

  it("refuses reserved names with 422", async () => {
    for (const reserved of ["admin.localhost", "tenantry.localhost", "globex.tenantry.localhost"]) {
      const response = await adminCall("/v1/tenants/globex/domains", json({ domain: reserved }));
      expect(response.status).toBe(422);
      expect(((await response.json()) as { code: string }).code).toBe("validation_failed");
    }
  });
});
