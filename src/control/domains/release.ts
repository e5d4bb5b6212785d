/**
 * Removing a domain for good: its Cloudflare custom hostname first, then its row. When Cloudflare
 * cannot be reached the row stays `removing` (the edge already ignores it) and the cron retries, so
 * neither side is left with an orphan. Used by `domains remove`, tenant delete and the cron.
 */
import { eq } from "drizzle-orm";
import { domains } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import type { DomainRow } from "../tenants/rows.ts";

/** true when the domain is gone on both sides; false when it stays `removing` for the cron. */
export async function releaseDomain(deps: ControlDeps, row: DomainRow): Promise<boolean> {
  if (row.cfId) {
    if (!deps.customHostnames) return false;
    try {
      await deps.customHostnames.delete(row.cfId);
    } catch {
      await deps.db
        .update(domains)
        .set({ status: "removing", checkedAt: new Date().toISOString() })
        .where(eq(domains.hostname, row.hostname));
      return false;
    }
  }
  await deps.db.delete(domains).where(eq(domains.hostname, row.hostname));
  return true;
}

/** Releases every domain of a tenant (tenant delete); the ones Cloudflare refused stay `removing`. */
export async function releaseTenantDomains(deps: ControlDeps, tenantId: string): Promise<void> {
  const rows = await deps.db
    .update(domains)
    .set({ status: "removing" })
    .where(eq(domains.tenantId, tenantId))
    .returning();
  for (const row of rows) await releaseDomain(deps, row);
}
