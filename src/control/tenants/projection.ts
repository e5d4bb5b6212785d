/**
 * The KV projection: the edge resolves tenants from KV records (by slug and by host) derived from
 * the committed control-plane state, never written on their own. `desiredRecords` is the pure rule
 * (only active and suspended tenants have records, and a host only once its domain is active: a
 * custom hostname still pending validation answers 404 tenant_not_found); `projectTenant` makes KV match it for one
 * tenant after each change, and reconcile.ts repairs whatever drift is left.
 */
import { hostKey, slugKey, type TenantRecord } from "../../shared/tenant-record.ts";
import type { DomainState, TenantState } from "../schema.ts";
import type { ControlDeps } from "./deps.ts";
import { domainsOf, type TenantRow } from "./rows.ts";

/** Statuses the edge serves (or gates) and so has KV records for. */
export const PROJECTED: readonly TenantState[] = ["active", "suspended"];

/** The KV records a tenant should have right now: empty unless it is active or suspended. */
export function desiredRecords(
  row: TenantRow,
  hostnames: readonly { readonly hostname: string; readonly status: DomainState }[],
): Map<string, TenantRecord> {
  const records = new Map<string, TenantRecord>();
  if (!PROJECTED.includes(row.status) || !row.dbSecret) return records;
  const record: TenantRecord = {
    v: 1,
    id: row.id,
    slug: row.slug,
    // An active tenant whose write-pausing migration is running is `migrating`: 503 at the edge.
    status: row.status === "suspended" ? "suspended" : row.writesPausedBy ? "migrating" : "active",
    region: row.region,
    schemaVersion: row.schemaVersion,
    db: row.dbSecret,
    updatedAt: row.updatedAt,
  };
  records.set(slugKey(row.slug), record);
  for (const host of hostnames) if (host.status === "active") records.set(hostKey(host.hostname), record);
  return records;
}

/** Writes (or removes) every KV record of one tenant, from the committed control-plane state. */
export async function projectTenant(
  deps: ControlDeps,
  row: TenantRow,
  removedHosts: readonly string[] = [],
): Promise<void> {
  const hostnames = await domainsOf(deps, row.id);
  const desired = desiredRecords(row, hostnames);
  for (const [key, record] of desired) await deps.kv.put(key, JSON.stringify(record));
  const stale = [slugKey(row.slug), ...hostnames.map((d) => hostKey(d.hostname)), ...removedHosts.map(hostKey)].filter(
    (key) => !desired.has(key),
  );
  for (const key of new Set(stale)) await deps.kv.delete(key);
  deps.onProjected?.();
}
