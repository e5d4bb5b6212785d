/**
 * Every admin action lands in the audit log, whatever its outcome: who (the admin token's `sub`),
 * what, on which target, ok or error (with the error code). Read back through GET /v1/audit.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import { call, json, seedKv } from "./support.ts";

interface Entry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: "ok" | "error";
  detail: Record<string, unknown> | null;
}

const ADMIN = "http://admin.localhost";
// Unique per run: other test files share the control database (and its audit log).
const ACTOR = `auditor-${crypto.randomUUID().slice(0, 8)}`;
const OTHER = `second-${crypto.randomUUID().slice(0, 8)}`;
const SLUG = "ad-shop";
let admin = "";

const mint = (sub: string, scope = ALL_ADMIN_SCOPES) =>
  mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub,
    scope,
  });

async function expectStatus(response: Response, status: number, code?: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  if (code) expect((JSON.parse(text) as { code: string }).code).toBe(code);
}

async function audit(query: string, bearer = admin): Promise<Entry[]> {
  const response = await call(`${ADMIN}/v1/audit?${query}`, { token: bearer });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return (JSON.parse(text) as { items: Entry[] }).items;
}

/** The tenant's audit trail, oldest first, as [actor, action, outcome, error code]. */
async function trail(target: string): Promise<[string, string, string, unknown][]> {
  const entries = await audit(`target=${encodeURIComponent(target)}&limit=500`);
  return entries
    .reverse()
    .map((e) => [e.actor, e.action, e.outcome, e.outcome === "error" ? (e.detail?.code ?? null) : undefined]);
}

beforeAll(async () => {
  await seedKv();
  admin = await mint(ACTOR);
});

describe("the audit log records every admin action", () => {
  it("a tenant's whole life, refusals included, in order, with the acting subject", async () => {
    const second = await mint(OTHER);
    const run = async (request: Promise<Response>, status: number, code?: string) =>
      expectStatus(await request, status, code);
    await run(
      call(`${ADMIN}/v1/tenants`, {
        ...json({ slug: SLUG, region: "local", domains: ["shop.ad-shop.localhost"] }),
        token: admin,
      }),
      201,
    );
    await run(call(`${ADMIN}/v1/tenants`, { ...json({ slug: SLUG, region: "local" }), token: admin }), 409, "conflict");
    await run(call(`${ADMIN}/v1/tenants/${SLUG}/suspend`, { method: "POST", token: admin }), 200);
    await run(call(`${ADMIN}/v1/tenants/${SLUG}/resume`, { method: "POST", token: second }), 200);
    await run(
      call(`${ADMIN}/v1/tenants/${SLUG}/domains`, { ...json({ domain: "www.ad-shop.localhost" }), token: admin }),
      200,
    );
    await run(
      call(`${ADMIN}/v1/tenants/${SLUG}/domains`, { ...json({ domain: "acme.localhost" }), token: admin }),
      409,
      "conflict",
    );
    await run(
      call(`${ADMIN}/v1/tenants/${SLUG}/domains/www.ad-shop.localhost`, { method: "DELETE", token: admin }),
      200,
    );
    await run(call(`${ADMIN}/v1/tenants/${SLUG}/retry`, { method: "POST", token: admin }), 200);
    await run(call(`${ADMIN}/v1/tenants/${SLUG}`, { method: "DELETE", token: admin }), 422, "confirmation_required");
    await run(call(`${ADMIN}/v1/tenants/${SLUG}?confirm=${SLUG}`, { method: "DELETE", token: second }), 200);
    await run(call(`${ADMIN}/v1/tenants/${SLUG}/suspend`, { method: "POST", token: admin }), 409, "invalid_state");

    expect(await trail(SLUG)).toEqual([
      [ACTOR, "tenant.create", "ok", undefined],
      [ACTOR, "tenant.create", "error", "conflict"],
      [ACTOR, "tenant.suspend", "ok", undefined],
      [OTHER, "tenant.resume", "ok", undefined],
      [ACTOR, "domain.add", "ok", undefined],
      [ACTOR, "domain.add", "error", "conflict"],
      [ACTOR, "domain.remove", "ok", undefined],
      [ACTOR, "tenant.retry", "ok", undefined],
      [ACTOR, "tenant.delete", "error", "confirmation_required"],
      // The delete purges the tenant's exports from R2 (GDPR erasure), audited on its own.
      [OTHER, "export.purge", "ok", undefined],
      [OTHER, "tenant.delete", "ok", undefined],
      [ACTOR, "tenant.suspend", "error", "invalid_state"],
    ]);
  });

  it("entries carry safe details: the domain, the created tenant's id and region, never secrets", async () => {
    const entries = await audit(`target=${SLUG}&limit=500`);
    const created = entries.find((e) => e.action === "tenant.create" && e.outcome === "ok");
    expect(created?.detail).toMatchObject({ id: expect.stringMatching(/^ten_/), region: "local", status: "active" });
    const added = entries.find((e) => e.action === "domain.add" && e.outcome === "ok");
    expect(added?.detail).toMatchObject({ domain: "www.ad-shop.localhost" });
    for (const entry of entries) {
      expect(entry.at).toEqual(expect.any(String));
      expect(Number.isNaN(Date.parse(entry.at))).toBe(false);
    }
    expect(JSON.stringify(entries)).not.toMatch(/postgres(ql)?:\/\/|password|dbSecret|migrationSecret/i);
  });

  it("refused creates are recorded under the slug that was asked for", async () => {
    await expectStatus(
      await call(`${ADMIN}/v1/tenants`, { ...json({ slug: "ad-mars", region: "mars-1" }), token: admin }),
      422,
      "region_unsupported",
    );
    await expectStatus(
      await call(`${ADMIN}/v1/tenants`, {
        ...json({ slug: "ad-taken", region: "local", domains: ["globex.localhost"] }),
        token: admin,
      }),
      409,
      "conflict",
    );
    expect(await trail("ad-mars")).toEqual([[ACTOR, "tenant.create", "error", "region_unsupported"]]);
    expect(await trail("ad-taken")).toEqual([[ACTOR, "tenant.create", "error", "conflict"]]);
  });

  it("a reconcile is recorded with its counts (target *)", async () => {
    const response = await call(`${ADMIN}/v1/reconcile`, { method: "POST", token: admin });
    expect(response.status).toBe(200);
    const report = (await response.json()) as Record<string, number>;
    const mine = (await audit("target=*&limit=500")).filter((e) => e.actor === ACTOR);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ action: "kv.reconcile", target: "*", outcome: "ok", detail: report });
  });

  it("lists newest first, honours limit, and filters by target", async () => {
    const two = await audit(`target=${SLUG}&limit=2`);
    expect(two).toHaveLength(2);
    expect(two[0]?.id).toBeGreaterThan(two[1]?.id ?? Number.POSITIVE_INFINITY);
    expect(two.map((e) => e.action)).toEqual(["tenant.suspend", "tenant.delete"]);
    const all = await audit("limit=500");
    expect(all.length).toBeGreaterThan(0);
    const ids = all.map((e) => e.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(await audit("target=ad-never-touched")).toEqual([]);
  });

  it("reading the audit log needs tenants:read and an admin token", async () => {
    await expectStatus(await call(`${ADMIN}/v1/audit`), 401, "unauthorized");
    await expectStatus(await call(`${ADMIN}/v1/audit`, { token: await mint(ACTOR, "fleet:run") }), 403, "forbidden");
    expect(await audit(`target=${SLUG}`, await mint("reader", "tenants:read"))).not.toEqual([]);
    await expectStatus(await call("http://acme.localhost/v1/audit", { token: admin }), 404, "not_found");
    await expectStatus(await call(`${ADMIN}/v1/audit?limit=0`, { token: admin }), 422, "validation_failed");
  });
});
