/**
 * Reconciliation: repairs drift between the control database and KV (a write that failed after
 * its commit, a record edited by hand, a key left behind). Missing records are written, stale ones
 * rewritten, orphans (keys no tenant should have) deleted. Run by cron and on demand; audited.
 */
import { and, asc, gt, inArray } from "drizzle-orm";
import { parseTenantRecord, type TenantRecord } from "../../shared/tenant-record.ts";
import { domains, tenants } from "../schema.ts";
import { audited } from "./audit.ts";
import type { ControlDeps, KvStore } from "./deps.ts";
import { desiredRecords, PROJECTED } from "./projection.ts";

export interface ReconcileReport {
  readonly checked: number;
  readonly missing: number;
  readonly stale: number;
  readonly orphan: number;
  readonly ok: number;
}

/** Equal in what the edge acts on; `updatedAt` is not compared (the edge never reads it). */
function sameRecord(stored: TenantRecord | undefined, wanted: TenantRecord): boolean {
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

async function kvKeys(kv: KvStore, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix, cursor });
    names.push(...page.keys.map((key) => key.name));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return names;
}

/** Every KV record the fleet should have, read from the control database 500 tenants at a time. */
async function allDesiredRecords(deps: ControlDeps): Promise<Map<string, TenantRecord>> {
  const desired = new Map<string, TenantRecord>();
  let cursor: string | undefined;
  for (;;) {
    const page = await deps.db
      .select()
      .from(tenants)
      .where(and(inArray(tenants.status, [...PROJECTED]), cursor ? gt(tenants.id, cursor) : undefined))
      .orderBy(asc(tenants.id))
      .limit(500);
    if (page.length === 0) break;
    const hostRows = await deps.db
      .select()
      .from(domains)
      .where(
        inArray(
          domains.tenantId,
          page.map((row) => row.id),
        ),
      );
    for (const row of page) {
      const hosts = hostRows.filter((h) => h.tenantId === row.id);
      for (const [key, record] of desiredRecords(row, hosts)) desired.set(key, record);
    }
    cursor = page.at(-1)?.id;
  }
  return desired;
}

export async function reconcile(deps: ControlDeps): Promise<ReconcileReport> {
  return audited(
    deps,
    "kv.reconcile",
    "*",
    async () => {
      const desired = await allDesiredRecords(deps);
      let missing = 0;
      let stale = 0;
      let ok = 0;
      for (const [key, wanted] of desired) {
        const text = await deps.kv.get(key, "text");
        if (text === null) missing += 1;
        else {
          let stored: TenantRecord | undefined;
          try {
            stored = parseTenantRecord(JSON.parse(text));
          } catch {
            stored = undefined;
          }
          if (sameRecord(stored, wanted)) {
            ok += 1;
            continue;
          }
          stale += 1;
        }
        await deps.kv.put(key, JSON.stringify(wanted));
      }
      let orphan = 0;
      for (const key of [...(await kvKeys(deps.kv, "host:")), ...(await kvKeys(deps.kv, "slug:"))]) {
        if (!desired.has(key)) {
          orphan += 1;
          await deps.kv.delete(key);
        }
      }
      if (missing + stale + orphan > 0) deps.onProjected?.();
      return { checked: desired.size, missing, stale, orphan, ok };
    },
    (report) => ({ ...report }),
  );
}
