/**
 * Makes KV hold the records a page of tenants should have: their records read in bulk (100 keys a
 * KV operation), the missing and stale ones written, within a budget of operations. Reconcile walks
 * the whole fleet with it; key re-encryption re-projects each batch with it, so a record a failed
 * write left under an old key is found and written again.
 */
import { inArray } from "drizzle-orm";
import { parseTenantRecord, type TenantRecord } from "../../shared/tenant-record.ts";
import { domains } from "../schema.ts";
import type { ControlDeps } from "./deps.ts";
import { type Budget, readMany } from "./kv-bulk.ts";
import { desiredRecords } from "./projection.ts";
import type { TenantRow } from "./rows.ts";

export interface RepairCounts {
  checked: number;
  missing: number;
  stale: number;
  ok: number;
  /** Writes that failed (only counted when tolerated; otherwise the error is thrown). */
  failed?: number;
}

/** Equal in what the edge acts on; `updatedAt` is not compared (the edge never reads it). */
export function sameRecord(stored: TenantRecord | undefined, wanted: TenantRecord): boolean {
  return (
    stored !== undefined &&
    stored.id === wanted.id &&
    stored.slug === wanted.slug &&
    stored.status === wanted.status &&
    stored.region === wanted.region &&
    stored.schemaVersion === wanted.schemaVersion &&
    stored.db === wanted.db
  );
}

export function parsedRecord(text: string | null | undefined): TenantRecord | undefined {
  if (!text) return undefined;
  try {
    return parseTenantRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Every projected tenant's records among `rows`, keyed by record key (one domains query). */
export async function recordsOf(
  deps: ControlDeps,
  rows: readonly TenantRow[],
): Promise<{ id: string; records: Map<string, TenantRecord> }[]> {
  if (rows.length === 0) return [];
  const hostRows = await deps.db
    .select()
    .from(domains)
    .where(
      inArray(
        domains.tenantId,
        rows.map((row) => row.id),
      ),
    );
  return rows.map((row) => ({
    id: row.id,
    records: desiredRecords(
      row,
      hostRows.filter((h) => h.tenantId === row.id),
    ),
  }));
}

/**
 * Repairs the records of `rows` (in id order) while the budget lasts. Returns the id of the last
 * tenant fully looked at (`after` when none) and whether the budget stopped it first.
 */
export async function repairRecords(
  deps: ControlDeps,
  rows: readonly TenantRow[],
  budget: Budget,
  counts: RepairCounts,
  options: { after: string | null; tolerate?: boolean },
): Promise<{ last: string | null; stopped: boolean }> {
  budget.spend();
  const wanted = await recordsOf(deps, rows);
  const stored = await readMany(
    deps.kv,
    wanted.flatMap((w) => [...w.records.keys()]),
    budget,
  );
  let last = options.after;
  let wrote = false;
  for (const { id, records } of wanted) {
    const writes = [...records].filter(([key, record]) => !sameRecord(parsedRecord(stored.get(key)), record));
    if (!budget.fits(writes.length)) return { last, stopped: true };
    for (const [key, record] of writes) {
      budget.spend();
      if ((stored.get(key) ?? null) === null) counts.missing += 1;
      else counts.stale += 1;
      try {
        await deps.kv.put(key, JSON.stringify(record));
        wrote = true;
      } catch (error) {
        if (!options.tolerate) throw error;
        counts.failed = (counts.failed ?? 0) + 1;
      }
    }
    counts.checked += records.size;
    counts.ok += records.size - writes.length;
    last = id;
  }
  if (wrote) deps.onProjected?.();
  return { last, stopped: false };
}
