/**
 * The host → tenant cache under a flood of unknown hosts (issue 16, finding 8): "not found" entries
 * live in their own bounded cache, so inventing hosts can never evict a cached tenant; and a single
 * label below the platform domain that is not a valid slug is answered without a KV read.
 * KV reads are counted by wrapping the binding, not by timing.
 */
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { purgeTenantCache, resolveTenant } from "../../src/worker/edge/resolve.ts";
import { call, seedKv } from "./support.ts";

let reads: string[] = [];
const kv = {
  get: (key: string, options: unknown) => {
    reads.push(key);
    return env.TENANTS.get(key, options as KVNamespaceGetOptions<"text">);
  },
} as unknown as KVNamespace;

const platform = () => env.PLATFORM_DOMAIN;

beforeEach(async () => {
  await seedKv();
  purgeTenantCache();
  reads = [];
});

describe("the tenant cache", () => {
  it("keeps a cached tenant through 6,000 unknown hosts", async () => {
    expect((await resolveTenant(kv, "acme.localhost", platform())).tenant?.slug).toBe("acme");
    for (let i = 0; i < 6_000; i++) {
      const result = await resolveTenant(kv, `unknown-${i}.example.com`, platform());
      expect(result.tenant).toBeNull();
    }
    reads = [];
    const again = await resolveTenant(kv, "acme.localhost", platform());
    expect(again).toMatchObject({ source: "cache", tenant: { slug: "acme" } });
    expect(reads).toEqual([]);
  });

  it("still caches a recent unknown host (one read, then none)", async () => {
    await resolveTenant(kv, "nobody.example.com", platform());
    await resolveTenant(kv, "nobody.example.com", platform());
    expect(reads).toEqual(["host:nobody.example.com"]);
  });

  it.each(["ab", "a--b", "1acme", "xn--bcher-kva", "x"])(
    "answers the platform host %s.<platform> without reading KV",
    async (label) => {
      const result = await resolveTenant(kv, `${label}.${platform()}`, platform());
      expect(result.tenant).toBeNull();
      expect(reads).toEqual([]);
    },
  );

  it("still reads KV for a valid slug and for deeper names below the platform domain", async () => {
    await resolveTenant(kv, `globex.${platform()}`, platform());
    await resolveTenant(kv, `shop.ab.${platform()}`, platform());
    expect(reads).toEqual(["slug:globex", `host:shop.ab.${platform()}`]);
  });

  it("answers an invalid platform slug over HTTP with 404 tenant_not_found", async () => {
    const response = await call(`http://a--b.${platform()}/api/products`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { code: string }).code).toBe("tenant_not_found");
    expect(response.headers.get("server-timing")).not.toContain('desc="kv"');
  });
});
