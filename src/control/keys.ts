/**
 * Key rotation for the tenants' connection strings (DB_ENCRYPTION_KEYS).
 *
 * Rotating is three steps: put a new key first in the ring (the old one stays, so everything still
 * decrypts) and deploy; re-encrypt every tenant's secrets under the new key (`reencryptSecrets`,
 * in batches, each tenant's KV records rewritten with it); and once `keyStatus` shows no secret
 * left under the old key id, in the control database and in KV (keys-kv.ts), remove the old key
 * and deploy again. A KV write that fails is counted, not fatal: the next call finds the record
 * behind (it reads every tenant's records in bulk) and writes it again.
 *
 * A secret that cannot be decrypted is reported, by tenant and reason, and left as it is. A row
 * changed meanwhile (a concurrent onboarding writes new secrets, always under the current key) is
 * not overwritten: each update is conditional on the ciphertexts it read.
 */
import { asc, gt, inArray, sql } from "drizzle-orm";
import { decryptSecret, encryptSecret, keyIdOf, tenantAad } from "../shared/crypto/secrets.ts";
import { type KvKeyCounts, kvKeyCounts } from "./keys-kv.ts";
import { tenants } from "./schema.ts";
import { audited } from "./tenants/audit.ts";
import type { ControlDeps } from "./tenants/deps.ts";
import { Budget } from "./tenants/kv-bulk.ts";
import { repairRecords } from "./tenants/repair-records.ts";
import { migrationAad, ring } from "./tenants/secrets.ts";

export interface KeyStatus extends Partial<KvKeyCounts> {
  /** The key id new ciphertexts are written with (the ring's first). */
  readonly currentKid: string;
  /** Every key id in the ring, current first. */
  readonly kids: string[];
  /** Connection strings at rest per key id (two per provisioned tenant); "?" for unreadable headers. */
  readonly secrets: Record<string, number>;
  /**
   * Connection strings not under the current key, in the control database and in KV records (what
   * the edge decrypts): 0 means the old keys can go.
   */
  readonly stale: number;
}

export type SecretName = "db" | "migration";

export interface ReencryptReport extends KeyStatus {
  /** Secrets re-encrypted under the current key by this call. */
  readonly reencrypted: number;
  /** KV records written again (new ciphertext, or one a failed write had left behind). */
  readonly reprojected: number;
  /** KV writes that failed in this call; a later call writes them again. */
  readonly kvFailed: number;
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

/**
 * The key ids in use, in the control database and (unless `kv` is false) in KV. Counting KV reads
 * every record (~110 bulk reads at 10,000 tenants), so a re-encryption batch counts it only in its
 * last call; the others report the control database alone, without `kv` and `kvBehind`.
 */
export async function keyStatus(deps: ControlDeps, options: { kv?: boolean } = {}): Promise<KeyStatus> {
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
  const held: Partial<KvKeyCounts> = options.kv === false ? {} : await kvKeyCounts(deps);
  const notCurrent = (counts: Record<string, number>, skip: string[]) =>
    Object.entries(counts)
      .filter(([kid]) => !skip.includes(kid))
      .reduce((sum, [, n]) => sum + n, 0);
  const stale = notCurrent(secrets, [keys.currentKid]) + notCurrent(held.kv ?? {}, [keys.currentKid, "missing"]);
  return { currentKid: keys.currentKid, kids: [...keys.kids], secrets, stale, ...held };
}

type Resealed = { token: string | null } | { reason: string };
type Row = typeof tenants.$inferSelect;

/**
 * Writes the re-encrypted secrets of a batch in one statement, each row only if it still holds the
 * ciphertexts that were read (a concurrent onboarding wins). Returns the rows as updated.
 */
async function writeResealed(
  deps: ControlDeps,
  updates: { row: Row; dbSecret: string | null; migrationSecret: string | null }[],
): Promise<Row[]> {
  if (updates.length === 0) return [];
  const values = sql.join(
    updates.map(
      (u) =>
        sql`(${u.row.id}::text, ${u.dbSecret}::text, ${u.migrationSecret}::text, ${u.row.dbSecret}::text, ${u.row.migrationSecret}::text)`,
    ),
    sql`, `,
  );
  const result = await deps.db.execute<{ id: string }>(sql`
    UPDATE ${tenants} SET db_secret = v.db, migration_secret = v.mig, updated_at = now()
    FROM (VALUES ${values}) AS v(id, db, mig, old_db, old_mig)
    WHERE ${tenants.id} = v.id
      AND ${tenants.dbSecret} IS NOT DISTINCT FROM v.old_db
      AND ${tenants.migrationSecret} IS NOT DISTINCT FROM v.old_mig
    RETURNING ${tenants.id}`);
  const ids = result.rows.map((r) => r.id);
  if (ids.length === 0) return [];
  return deps.db.select().from(tenants).where(inArray(tenants.id, ids));
}

/** Operations (KV and control database) one call may spend, under the 1,000 of an invocation. */
const CALL_BUDGET = 700;

/**
 * Looks at up to `limit` tenants (by id, after `after`): re-encrypts, under the current key, the
 * secrets under another, and writes again every KV record that does not hold the tenant's current
 * ciphertext, whether just re-encrypted or left behind by a write that failed earlier.
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
  return audited(
    deps,
    "keys.reencrypt",
    "*",
    async () => {
      const rows = await deps.db
        .select()
        .from(tenants)
        .where(options.after ? gt(tenants.id, options.after) : undefined)
        .orderBy(asc(tenants.id))
        .limit(options.limit);
      const failed: { slug: string; secret: SecretName; reason: string }[] = [];
      const updates: { row: Row; dbSecret: string | null; migrationSecret: string | null }[] = [];
      for (const row of rows) {
        const db = await reseal(row.dbSecret, tenantAad(row.id));
        const migration = await reseal(row.migrationSecret, migrationAad(row.id));
        if ("reason" in db) failed.push({ slug: row.slug, secret: "db", reason: db.reason });
        if ("reason" in migration) failed.push({ slug: row.slug, secret: "migration", reason: migration.reason });
        const dbSecret = "token" in db ? db.token : row.dbSecret;
        const migrationSecret = "token" in migration ? migration.token : row.migrationSecret;
        if (dbSecret !== row.dbSecret || migrationSecret !== row.migrationSecret)
          updates.push({ row, dbSecret, migrationSecret });
      }
      const updated = await writeResealed(deps, updates);
      const changed = updates.length - updated.length;
      const reencrypted = updated.reduce((n, row) => {
        const before = updates.find((u) => u.row.id === row.id)?.row;
        return (
          n + (before?.dbSecret !== row.dbSecret ? 1 : 0) + (before?.migrationSecret !== row.migrationSecret ? 1 : 0)
        );
      }, 0);
      // The edge reads the connection string from KV: it must hold the new ciphertext before the
      // old key is removed. Re-project from the rows as they now are.
      const current = rows.map((row) => updated.find((u) => u.id === row.id) ?? row);
      const counts = { checked: 0, missing: 0, stale: 0, ok: 0, failed: 0 };
      const budget = new Budget(CALL_BUDGET);
      const { last, stopped } = await repairRecords(deps, current, budget, counts, {
        after: options.after ?? null,
        tolerate: true,
      });
      const next = stopped ? last : rows.length === options.limit ? (rows.at(-1)?.id ?? null) : null;
      return {
        ...(await keyStatus(deps, { kv: next === null })),
        reencrypted,
        reprojected: counts.missing + counts.stale - (counts.failed ?? 0),
        kvFailed: counts.failed ?? 0,
        failed,
        changed,
        next,
      };
    },
    (report) => ({
      reencrypted: report.reencrypted,
      reprojected: report.reprojected,
      kvFailed: report.kvFailed,
      failed: report.failed.length,
      stale: report.stale,
    }),
  );
}
