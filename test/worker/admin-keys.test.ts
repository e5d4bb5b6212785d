/**
 * Rotating DB_ENCRYPTION_KEYS: tenants whose connection strings were written under a retired key
 * (k0, still in the test ring after the current k1) are re-encrypted under the current key through
 * the admin API, in batches, with their KV records rewritten, so the edge serves them once k0 is
 * gone from the ring. A secret that does not decrypt is reported and left alone.
 *
 * Only this file's tenants are ever under k0, so a pass changes nothing of the other files'.
 */
import { env } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import type { KeyStatus, ReencryptReport } from "../../src/control/keys.ts";
import { tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import type { ControlDeps } from "../../src/control/tenants/deps.ts";
import { deleteTenant, suspendTenant } from "../../src/control/tenants/lifecycle.ts";
import { migrationAad } from "../../src/control/tenants/secrets.ts";
import { decryptSecret, encryptSecret, parseKeyRing, tenantAad } from "../../src/shared/crypto/secrets.ts";
import { hostKey } from "../../src/shared/tenant-record.ts";
import { controlDepsFrom } from "../../src/worker/admin/deps.ts";
import { adminToken, call, json, tenantRow, token } from "./support.ts";

const ADMIN = "http://admin.localhost";
const TAG = `ky${Math.random().toString(36).slice(2, 6)}`;
const [CURRENT = "", RETIRED = ""] = env.DB_ENCRYPTION_KEYS.split(",");
let admin = "";

/** Control-plane dependencies that write new secrets under the retired key, as before a rotation. */
const underRetired = (): ControlDeps => ({
  ...controlDepsFrom(env, "keys-test"),
  encryptionKeys: `${RETIRED},${CURRENT}`,
});

async function status(): Promise<KeyStatus> {
  const response = await call(`${ADMIN}/v1/keys`, { token: admin });
  expect(response.status).toBe(200);
  return (await response.json()) as KeyStatus;
}

/** Every batch of a full pass, `limit` tenants each, as `tenantry keys reencrypt` does. */
async function reencryptAll(limit: number): Promise<ReencryptReport[]> {
  const batches: ReencryptReport[] = [];
  let after: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(limit), ...(after ? { after } : {}) });
    const response = await call(`${ADMIN}/v1/keys/reencrypt?${query}`, { method: "POST", token: admin });
    expect(response.status, await response.clone().text()).toBe(200);
    const report = (await response.json()) as ReencryptReport;
    batches.push(report);
    after = report.next;
  } while (after && batches.length < 1_000);
  return batches;
}

/** Both secrets of a tenant, decrypted with the whole test ring. */
async function plaintexts(id: string, row: { dbSecret: string | null; migrationSecret: string | null }) {
  const ring = parseKeyRing(env.DB_ENCRYPTION_KEYS);
  const db = await decryptSecret(ring, row.dbSecret ?? "", tenantAad(id));
  const migration = await decryptSecret(ring, row.migrationSecret ?? "", migrationAad(id));
  return { db, migration };
}

const kid = (secret: string | null) => secret?.split(".")[1];

beforeAll(async () => {
  neonConfig.fetchEndpoint = inject("gatewayUrl");
  admin = await adminToken("keys-ops");
});

describe("encryption key rotation", () => {
  it("the key status needs tenants:read and re-encrypting needs tenants:write", async () => {
    const reader = await adminToken("keys-reader", "tenants:read");
    expect((await call(`${ADMIN}/v1/keys`, { token: reader })).status).toBe(200);
    const refused = await call(`${ADMIN}/v1/keys/reencrypt`, { method: "POST", token: reader });
    expect(refused.status).toBe(403);
    expect((await call(`${ADMIN}/v1/keys`)).status).toBe(401);
    const bad = await call(`${ADMIN}/v1/keys/reencrypt?limit=0`, { method: "POST", token: admin });
    expect(bad.status).toBe(422);
  });

  it("re-encrypts what the retired key wrote, rewrites KV, and the edge serves it with that key gone", async () => {
    const slugs = [`${TAG}-a`, `${TAG}-b`, `${TAG}-c`];
    const hosts = slugs.map((slug) => `shop.${slug}.localhost`);
    for (const [i, slug] of slugs.entries()) {
      await createTenant(underRetired(), { slug, region: "local", domains: [hosts[i] as string] });
    }
    const before = await Promise.all(slugs.map(tenantRow));
    for (const row of before) expect([kid(row.dbSecret), kid(row.migrationSecret)]).toEqual(["k0", "k0"]);
    const original = await Promise.all(before.map((row) => plaintexts(row.id, row)));
    for (const p of original) expect([p.db.ok, p.migration.ok]).toEqual([true, true]);

    const start = await status();
    expect(start).toMatchObject({ currentKid: "k1", kids: ["k1", "k0"] });
    expect(start.secrets.k0).toBeGreaterThanOrEqual(6);
    expect(start.stale).toBeGreaterThanOrEqual(6);

    // Without k0 in the ring, the edge cannot open the connection string it finds in KV.
    const onlyCurrent = { DB_ENCRYPTION_KEYS: CURRENT } as Partial<Env>;
    const refused = await call(`http://${hosts[0]}/api/products`, { env: onlyCurrent });
    expect(refused.status).toBe(500);
    expect(((await refused.json()) as { code: string }).code).toBe("tenant_unavailable");

    // One tenant per request: several batches, each continuing after the last.
    const batches = await reencryptAll(1);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(batches.reduce((n, b) => n + b.reencrypted, 0)).toBeGreaterThanOrEqual(6);
    expect(batches.flatMap((b) => b.failed).filter((f) => slugs.includes(f.slug))).toEqual([]);
    expect(batches.at(-1)?.secrets.k0 ?? 0).toBe(0);

    const after = await Promise.all(slugs.map(tenantRow));
    for (const [i, row] of after.entries()) {
      expect([kid(row.dbSecret), kid(row.migrationSecret)]).toEqual(["k1", "k1"]);
      // The same connection strings, under the new key.
      const now = await plaintexts(row.id, row);
      expect(now).toEqual(original[i]);
      const current = parseKeyRing(CURRENT);
      expect((await decryptSecret(current, row.dbSecret ?? "", tenantAad(row.id))).ok).toBe(true);
      expect((await decryptSecret(current, row.migrationSecret ?? "", migrationAad(row.id))).ok).toBe(true);
      // KV holds the new ciphertext: it is what the edge decrypts.
      const record = JSON.parse((await env.TENANTS.get(hostKey(hosts[i] as string))) ?? "{}") as { db?: string };
      expect(record.db).toBe(row.dbSecret);
    }

    // k0 removed from the ring: the edge answers from the tenant's database.
    const served = await call(`http://${hosts[0]}/api/products`, {
      ...json({ sku: "KEY-1", name: "After rotation", priceCents: 1 }),
      token: await token(slugs[0] as string, "alice", { scope: "catalog:write" }),
      env: onlyCurrent,
    });
    expect(served.status, await served.clone().text()).toBe(201);

    // A second pass has nothing left to do.
    const again = await reencryptAll(100);
    expect(again.reduce((n, b) => n + b.reencrypted, 0)).toBe(0);

    const audit = await call(`${ADMIN}/v1/audit?target=*&limit=5`, { token: admin });
    const entries = ((await audit.json()) as { items: { action: string; outcome: string }[] }).items;
    expect(entries[0]).toMatchObject({ action: "keys.reencrypt", outcome: "ok" });
  });

  it("a tenant whose secrets are rewritten meanwhile keeps the new ones: counted as changed, not overwritten", async () => {
    const slug = `${TAG}-raced`;
    await createTenant(underRetired(), { slug, region: "local" });
    const row = await tenantRow(slug);
    const deps = controlDepsFrom(env, "keys-test");
    const { db } = await plaintexts(row.id, row);
    if (!db.ok) throw new Error("the tenant's connection string did not decrypt");
    // What a concurrent writer (a retried onboarding) puts there: the same string under the current key.
    const written = await encryptSecret(parseKeyRing(CURRENT), db.plaintext, tenantAad(row.id));
    let raced = false;
    neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
      const body = String(init?.body ?? "");
      // The batch's one conditional UPDATE (keys.ts writeResealed), with this tenant among its rows.
      if (!raced && /UPDATE \\"tenants\\" SET db_secret = v\.db/.test(body) && body.includes(row.id)) {
        raced = true;
        await deps.db.update(tenants).set({ dbSecret: written }).where(eq(tenants.id, row.id));
      }
      return fetch(input, init);
    };
    let batches: ReencryptReport[];
    try {
      batches = await reencryptAll(100);
    } finally {
      neonConfig.fetchFunction = undefined;
    }
    expect(raced).toBe(true);
    expect(batches.reduce((n, b) => n + b.changed, 0)).toBe(1);
    const after = await tenantRow(slug);
    expect(after.dbSecret).toBe(written);
    // Its migration secret went with the update that was refused: the next pass re-encrypts it.
    expect(kid(after.migrationSecret)).toBe("k0");
    const next = await reencryptAll(100);
    expect(next.reduce((n, b) => n + b.reencrypted, 0)).toBe(1);
    expect(kid((await tenantRow(slug)).migrationSecret)).toBe("k1");
    expect((await tenantRow(slug)).dbSecret).toBe(written);
  });

  it("a secret that does not decrypt is reported and left as it is; the other one is re-encrypted", async () => {
    const slug = `${TAG}-broken`;
    await createTenant(underRetired(), { slug, region: "local" });
    // Suspended, so no fleet run or nightly export of another file picks it up while it is broken.
    await suspendTenant(controlDepsFrom(env, "keys-test"), slug);
    const row = await tenantRow(slug);
    // A k0 ciphertext made for another tenant: it fails authentication under this tenant's id.
    const foreign = await encryptSecret(parseKeyRing(RETIRED), "postgres://elsewhere", tenantAad("ten_other"));
    const deps = controlDepsFrom(env, "keys-test");
    await deps.db.update(tenants).set({ dbSecret: foreign }).where(eq(tenants.id, row.id));

    try {
      const batches = await reencryptAll(100);
      expect(batches.flatMap((b) => b.failed).filter((f) => f.slug === slug)).toEqual([
        { slug, secret: "db", reason: "auth_failed" },
      ]);
      const after = await tenantRow(slug);
      expect(after.dbSecret).toBe(foreign);
      expect(kid(after.migrationSecret)).toBe("k1");
      expect((await plaintexts(row.id, after)).migration).toEqual((await plaintexts(row.id, row)).migration);
      expect((await status()).secrets.k0).toBeGreaterThanOrEqual(1);
      // The response names the tenant and the reason, never a secret or a key.
      const text = JSON.stringify(batches);
      expect(text).not.toContain(foreign);
      expect(text).not.toContain(RETIRED.slice(3));
      expect(text).not.toContain(CURRENT.slice(3));
    } finally {
      await deleteTenant(deps, slug, slug);
    }
  });

  it("a ciphertext of another format counts as unreadable and is reported, not taken for the key it names", async () => {
    const slug = `${TAG}-alien`;
    const deps = controlDepsFrom(env, "keys-test");
    await createTenant(deps, { slug, region: "local" });
    await suspendTenant(deps, slug);
    const row = await tenantRow(slug);
    // Names the current key id, but not in a version this code writes.
    const alien = `v2.${row.migrationSecret?.split(".").slice(1).join(".")}`;
    await deps.db.update(tenants).set({ migrationSecret: alien }).where(eq(tenants.id, row.id));
    try {
      expect((await status()).secrets["?"]).toBeGreaterThanOrEqual(1);
      const batches = await reencryptAll(100);
      expect(batches.flatMap((b) => b.failed).filter((f) => f.slug === slug)).toEqual([
        { slug, secret: "migration", reason: "malformed" },
      ]);
      expect((await tenantRow(slug)).migrationSecret).toBe(alien);
      expect((await tenantRow(slug)).dbSecret).toBe(row.dbSecret);
    } finally {
      await deleteTenant(deps, slug, slug);
    }
  });
});
