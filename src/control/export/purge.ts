/**
 * GDPR erasure of exports: a deleted tenant's exports are copies of its data, so the delete flow
 * removes every one of them from R2 and marks its row `deleted` (manifest, sizes and error
 * cleared), keeping only the final export the operator asked for; that one is removed by the
 * nightly cron once FINAL_EXPORT_RETENTION_DAYS have passed. Every removal is audited.
 *
 * Objects are found two ways: the keys of every export row, and (where the bucket can list, as R2
 * can) everything under the tenant's prefix, so an object no row names is removed too. An export
 * that was running during the delete checks again when it finishes (see service.ts): the purge
 * marks running rows `deleted`, and an export whose row is no longer `running` removes what it wrote.
 */
import { and, asc, eq, inArray, lt, ne } from "drizzle-orm";
import { exportsTable, tenants } from "../schema.ts";
import { audit } from "../tenants/audit.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import type { ExportBucket } from "./upload.ts";

/** Days a final export is kept after its tenant's deletion, unless FINAL_EXPORT_RETENTION_DAYS says otherwise. */
export const DEFAULT_FINAL_RETENTION_DAYS = 30;

/** R2 deletes at most 1,000 keys per call. */
const DELETE_BATCH = 1000;

/** A bucket that may also list (an R2Bucket does). */
export type PurgeBucket = ExportBucket & {
  list?: (options: { prefix: string; cursor?: string }) => Promise<{
    objects: { key: string }[];
    truncated: boolean;
    cursor?: string;
  }>;
};

export interface PurgeDeps extends ControlDeps {
  readonly bucket: PurgeBucket;
}

const tenantPrefix = (tenantId: string) => `exports/${tenantId}/`;
const exportPrefix = (tenantId: string, exportId: string) => `${tenantPrefix(tenantId)}${exportId}/`;

async function deleteKeys(bucket: PurgeBucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await bucket.delete(keys.slice(i, i + DELETE_BATCH));
}

/** Every object under `prefix`, where the bucket can list (none otherwise). */
async function listKeys(bucket: PurgeBucket, prefix: string): Promise<string[]> {
  if (!bucket.list) return [];
  const keys: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await bucket.list(cursor ? { prefix, cursor } : { prefix });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated || !page.cursor) return keys;
    cursor = page.cursor;
  }
}

/** Removes one export's objects and marks its row deleted. */
export async function removeExport(deps: PurgeDeps, tenantId: string, exportId: string): Promise<void> {
  const prefix = exportPrefix(tenantId, exportId);
  await deleteKeys(deps.bucket, [
    `${prefix}dump.sql.gz`,
    `${prefix}manifest.json`,
    ...(await listKeys(deps.bucket, prefix)),
  ]);
  await markDeleted(deps, [exportId]);
}

async function markDeleted(deps: ControlDeps, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await deps.db
    .update(exportsTable)
    .set({ status: "deleted", manifest: null, bytes: null, rows: null, error: null })
    .where(inArray(exportsTable.id, ids));
}

/**
 * Removes every export of a tenant being deleted except `keep` (the final export, if any): its R2
 * objects, then its row (marked `deleted`). Safe to repeat. Returns how many rows it marked.
 */
export async function purgeTenantExports(
  deps: PurgeDeps,
  tenantId: string,
  slug: string,
  keep?: string,
): Promise<number> {
  const rows = await deps.db
    .select({ id: exportsTable.id })
    .from(exportsTable)
    .where(and(eq(exportsTable.tenantId, tenantId), ne(exportsTable.status, "deleted")));
  const gone = rows.map((r) => r.id).filter((id) => id !== keep);
  const kept = keep ? exportPrefix(tenantId, keep) : undefined;
  const keys = [
    ...gone.flatMap((id) => [`${exportPrefix(tenantId, id)}dump.sql.gz`, `${exportPrefix(tenantId, id)}manifest.json`]),
    ...(await listKeys(deps.bucket, tenantPrefix(tenantId))).filter((key) => !kept || !key.startsWith(kept)),
  ];
  await deleteKeys(deps.bucket, [...new Set(keys)]);
  await markDeleted(deps, gone);
  await audit(deps, "export.purge", slug, "ok", { exports: gone.length, objects: keys.length, kept: keep ?? null });
  return gone.length;
}

/**
 * The cron's sweep: final exports of deleted tenants finished more than `days` ago are removed
 * (objects and row), each audited. Returns how many.
 */
/** Final exports expired per nightly invocation. */
export const FINAL_EXPIRE_PAGE = 50;

export async function expireFinalExports(deps: PurgeDeps, days: number, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - days * 86_400_000).toISOString();
  const due = await deps.db
    .select({ id: exportsTable.id, tenantId: exportsTable.tenantId, slug: exportsTable.slug })
    .from(exportsTable)
    .innerJoin(tenants, eq(tenants.id, exportsTable.tenantId))
    .where(
      and(
        eq(exportsTable.kind, "final"),
        eq(exportsTable.status, "complete"),
        eq(tenants.status, "deleted"),
        lt(exportsTable.finishedAt, cutoff),
      ),
    )
    // A few subrequests each (R2 list and deletes, the row, the audit): a bounded page per night keeps
    // the cron invocation within its limits; the rest wait for the next night.
    .orderBy(asc(exportsTable.finishedAt))
    .limit(FINAL_EXPIRE_PAGE);
  for (const e of due) {
    await removeExport(deps, e.tenantId, e.id);
    await audit(deps, "export.final_expire", e.slug, "ok", { exportId: e.id, retentionDays: days });
  }
  return due.length;
}
