/**
 * A control database of many tenants for the limits tests: its own database on the test server
 * (so the other test files' cron and reconcile never see it), migrated with the project's control
 * migrations, tenants inserted in bulk. The tenants have no databases of their own: dispatch,
 * reconcile and key re-encryption only need their rows and encrypted connection strings.
 */
import { env } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { inject } from "vitest";
import { domains, tenants } from "../../src/control/schema.ts";
import { controlDb } from "../../src/control/tenants/deps.ts";
import { migrationAad } from "../../src/control/tenants/secrets.ts";
import { controlMigrations } from "../../src/generated/control-migrations.ts";
import { encryptSecret, parseKeyRing, tenantAad } from "../../src/shared/crypto/secrets.ts";
import { migrateDatabase } from "../../src/shared/migrations.ts";
import { configureEndpoint } from "../../src/worker/tenant-db/middleware.ts";

export interface ScaleFleet {
  readonly url: string;
  readonly ids: string[];
  /** Tenants with a custom domain (`<slug>.scale.localhost`): every `hostEvery`-th. */
  readonly hosts: number;
}

/**
 * Creates `tenant_scale_<tag>` with `count` active tenants (`sc<tag>-00001`…), secrets under the
 * ring's first key unless `retired` (then under the test ring's second key, as before a rotation).
 */
export async function createScaleFleet(
  tag: string,
  count: number,
  options: { retired?: boolean; hostEvery?: number } = {},
): Promise<ScaleFleet> {
  configureEndpoint(env.NEON_FETCH_ENDPOINT);
  const name = `tenantry_scale_${tag}`;
  const admin = neon(inject("adminUrl"));
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(inject("adminUrl"));
  url.pathname = `/${name}`;
  await migrateDatabase(neon(url.toString()), controlMigrations);
  const [current = "", retired = ""] = env.DB_ENCRYPTION_KEYS.split(",");
  const ring = parseKeyRing(options.retired ? `${retired},${current}` : env.DB_ENCRYPTION_KEYS);
  const db = controlDb(url.toString());
  const ids: string[] = [];
  const hostEvery = options.hostEvery ?? 10;
  let hosts = 0;
  for (let start = 0; start < count; start += 1_000) {
    const rows = await Promise.all(
      Array.from({ length: Math.min(1_000, count - start) }, async (_, i) => {
        const n = String(start + i + 1).padStart(5, "0");
        const id = `tn_${tag}_${n}`;
        const conn = `postgres://app_${n}:pw@127.0.0.1:9/db_${n}`;
        ids.push(id);
        return {
          id,
          slug: `sc${tag}-${n}`,
          status: "active" as const,
          region: "local",
          provisioner: "url" as const,
          schemaVersion: "0000_init",
          dbSecret: await encryptSecret(ring, conn, tenantAad(id)),
          migrationSecret: await encryptSecret(ring, conn, migrationAad(id)),
        };
      }),
    );
    await db.insert(tenants).values(rows);
    const withHost = rows.filter((_, i) => (start + i) % hostEvery === 0);
    hosts += withHost.length;
    if (withHost.length > 0)
      await db.insert(domains).values(withHost.map((r) => ({ hostname: `${r.slug}.scale.localhost`, tenantId: r.id })));
  }
  ids.sort();
  return { url: url.toString(), ids, hosts };
}

/** Every KV key under `prefix` (tests only: unmetered). */
export async function kvKeys(prefix: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.TENANTS.list({ prefix, ...(cursor ? { cursor } : {}) });
    names.push(...page.keys.map((k) => k.name));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return names;
}
