/**
 * What KV really holds, per encryption key id: the edge decrypts the connection string it reads
 * from KV, not the control database's, so a rotation is only finished when every KV record holds
 * the tenant's current ciphertext. Counting the control database alone reported "done" while a
 * failed KV write left a record under the old key, and removing that key then took the tenant down.
 * Records are read in bulk (100 keys per KV operation): 10,000 tenants with a domain each for
 * one in ten take about 110 operations.
 */
import { and, asc, gt, inArray, isNotNull } from "drizzle-orm";
import { keyIdOf } from "../shared/crypto/secrets.ts";
import { tenants } from "./schema.ts";
import type { ControlDeps } from "./tenants/deps.ts";
import { Budget, readMany } from "./tenants/kv-bulk.ts";
import { PROJECTED } from "./tenants/projection.ts";
import { parsedRecord, recordsOf } from "./tenants/repair-records.ts";

export interface KvKeyCounts {
  /** KV records per key id of the connection string they hold ("missing": no record). */
  readonly kv: Record<string, number>;
  /** KV records that do not hold the control database's current ciphertext (missing included). */
  readonly kvBehind: number;
}

const PAGE = 1_000;

export async function kvKeyCounts(deps: ControlDeps): Promise<KvKeyCounts> {
  const kv: Record<string, number> = {};
  let kvBehind = 0;
  const budget = new Budget(Number.POSITIVE_INFINITY);
  let after: string | undefined;
  for (;;) {
    const rows = await deps.db
      .select()
      .from(tenants)
      .where(
        and(
          inArray(tenants.status, [...PROJECTED]),
          isNotNull(tenants.dbSecret),
          after ? gt(tenants.id, after) : undefined,
        ),
      )
      .orderBy(asc(tenants.id))
      .limit(PAGE);
    const wanted = await recordsOf(deps, rows);
    const stored = await readMany(
      deps.kv,
      wanted.flatMap((w) => [...w.records.keys()]),
      budget,
    );
    for (const { records } of wanted) {
      for (const [key, record] of records) {
        const held = parsedRecord(stored.get(key));
        const kid = held ? (keyIdOf(held.db) ?? "?") : "missing";
        kv[kid] = (kv[kid] ?? 0) + 1;
        if (held?.db !== record.db) kvBehind += 1;
      }
    }
    after = rows.at(-1)?.id;
    if (rows.length < PAGE) break;
  }
  return { kv, kvBehind };
}
