/**
 * Key rotation for the tenants' connection strings (DB_ENCRYPTION_KEYS).
 *
 * Rotating is three steps: put a new key first in the ring (the old one stays, so everything still
 * decrypts) and deploy; re-encrypt every tenant's secrets under the new key (`reencryptSecrets`,
 * in batches, each tenant's KV records rewritten with it); and once `keyStatus` shows no secret
 * left under the old key id, remove the old key and deploy again.
 *
 * A secret that cannot be decrypted is reported, by tenant and reason, and left as it is. A row
 * changed meanwhile (a concurrent onboarding writes new secrets, always under the current key) is
 * not overwritten: each update is conditional on the ciphertexts it read.
 */
import { and, asc, eq, gt, or, type SQL, sql } from "drizzle-orm";
import { decryptSecret, encryptSecret, keyHeader, keyIdOf, tenantAad } from "../shared/crypto/secrets.ts";
import { tenants } from "./schema.ts";
import { audited } from "./tenants/audit.ts";
import type { ControlDeps } from "./tenants/deps.ts";
import { projectTenant } from "./tenants/projection.ts";
import { migrationAad, ring } from "./tenants/secrets.ts";

export interface KeyStatus {
  /** The key id new ciphertexts are written with (the ring's first). */
  readonly currentKid: string;
  /** Every key id in the ring, current first. */
  readonly kids: string[];
  /** Connection strings at rest per key id (two per provisioned tenant); "?" for unreadable headers. */
  readonly secrets: Record<string, number>;
  /** How many of them are not under the current key: 0 means the old keys can go. */
  readonly stale: number;
}

export type SecretName = "db" | "migration";

export interface ReencryptReport extends KeyStatus {
  /** Secrets re-encrypted under the current key by this call. */
  readonly reencrypted: number;
  /** Secrets that could not be decrypted; left as they were. */
  readonly failed: { slug: string; secret: SecretName; reason: string }[];
  /** Tenants whose row changed while this call read it; a later pass looks at them again. */
  readonly changed: number;
  /** Pass as `after` to continue; null when every tenant has been looked at. */
  readonly next: string | null;
}

type SecretColumn = typeof tenants.dbSecret | typeof tenants.migrationSecret;

/** A ciphertext's header (see keyHeader), in SQL. */
const headerOf = (column: SecretColumn) => sql`split_part(${column}, '.', 1) || '.' || split_part(${column}, '.', 2)`;

export async function keyStatus(deps: ControlDeps): Promise<KeyStatus> {
  const keys = ring(deps.encryptionKeys);
  const result = await deps.db.execute<{ header: string; n: number }>(sql`
    SELECT header, count(*)::int AS n FROM (
      SELECT ${headerOf(tenants.dbSecret)} AS header FROM ${tenants} WHERE ${tenants.dbSecret} IS NOT NULL
      UNION ALL
      SELECT ${headerOf(tenants.migrationSecret)} FROM ${tenants} WHERE ${tenants.migrationSecret} IS NOT NULL
    ) AS secrets GROUP BY header ORDER BY header`);
  const secrets: Record<string, number> = {};
  for (const { header, n } of result.rows) {
    const name = keyIdOf(`${header}.`) ?? "?";
    secrets[name] = (secrets[name] ?? 0) + Number(n);
  }
  const stale = Object.entries(secrets)
    .filter(([kid]) => kid !== keys.currentKid)
    .reduce((sum, [, n]) => sum + n, 0);
  return { currentKid: keys.currentKid, kids: [...keys.kids], secrets, stale };
}

type Resealed = { token: string | null } | { reason: string };

/**
 * Re-encrypts, under the current key, the secrets of up to `limit` tenants (by id, after `after`)
 * that have one under another key.
 */
export async function reencryptSecrets(
  deps: ControlDeps,
  options: { after?: string | undefined; limit: number },
): Promise<ReencryptReport> {
  const keys = ring(deps.encryptionKeys);
  const reseal = async (token: string | null, aad: string): Promise<Resealed> => {
    if (token === null || keyIdOf(token) === keys.currentKid) return { token };
    const opened = await decryptSecret(keys, token, aad);
    if (!opened.ok) return { reason: opened.reason };
    return { token: await encryptSecret(keys, opened.plaintext, aad) };
  };
  const notCurrent = (column: SecretColumn): SQL =>
    sql`(${column} IS NOT NULL AND ${headerOf(column)} <> ${keyHeader(keys.currentKid)})`;
  return audited(
    deps,
    "keys.reencrypt",
    "*",
    async () => {
      const rows = await deps.db
        .select()
        .from(tenants)
        .where(
          and(
            options.after ? gt(tenants.id, options.after) : undefined,
            or(notCurrent(tenants.dbSecret), notCurrent(tenants.migrationSecret)),
          ),
        )
        .orderBy(asc(tenants.id))
        .limit(options.limit);
      let reencrypted = 0;
      let changed = 0;
      const failed: { slug: string; secret: SecretName; reason: string }[] = [];
      for (const row of rows) {
        const set: { dbSecret?: string | null; migrationSecret?: string | null } = {};
        for (const { secret, column, aad } of [
          { secret: "db", column: "dbSecret", aad: tenantAad(row.id) },
          { secret: "migration", column: "migrationSecret", aad: migrationAad(row.id) },
        ] as const) {
          const outcome = await reseal(row[column], aad);
          if ("reason" in outcome) failed.push({ slug: row.slug, secret, reason: outcome.reason });
          else if (outcome.token !== row[column]) set[column] = outcome.token;
        }
        if (Object.keys(set).length === 0) continue;
        const [updated] = await deps.db
          .update(tenants)
          .set({ ...set, updatedAt: new Date().toISOString() })
          .where(
            and(
              eq(tenants.id, row.id),
              sql`${tenants.dbSecret} IS NOT DISTINCT FROM ${row.dbSecret}`,
              sql`${tenants.migrationSecret} IS NOT DISTINCT FROM ${row.migrationSecret}`,
            ),
          )
          .returning();
        if (!updated) {
          changed += 1;
          continue;
        }
        reencrypted += Object.keys(set).length;
        // The edge reads the connection string from KV: it must hold the new ciphertext before the
        // old key is removed.
        if (set.dbSecret !== undefined) await projectTenant(deps, updated);
      }
      const next = rows.length === options.limit ? (rows.at(-1)?.id ?? null) : null;
      return { ...(await keyStatus(deps)), reencrypted, failed, changed, next };
    },
    (report) => ({ reencrypted: report.reencrypted, failed: report.failed.length, stale: report.stale }),
  );
}
