/**
 * The cron's domain pass: the least recently checked domains that have a Cloudflare side (pending,
 * active, moved, blocked; `removing` to retry a delete; pending without an id to create it), a page
 * per invocation, so a fleet of any size is covered across invocations within one invocation's
 * limits (PLATFORM.md: 1,000 KV operations, the subrequest limit). Per domain at most one KV
 * operation (its `host:` record written on activation or deleted when it stops being active) and
 * `attempts` Cloudflare requests; the page stops early once the Cloudflare budget is spent.
 */
import { and, asc, eq, inArray, isNotNull, type SQL, sql } from "drizzle-orm";
import { hostKey } from "../../shared/tenant-record.ts";
import { domains, tenants } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import { createCustomHostname } from "../tenants/domains.ts";
import { desiredRecords } from "../tenants/projection.ts";
import type { DomainRow, TenantRow } from "../tenants/rows.ts";
import { alertCondition, observe } from "./observe.ts";
import { releaseDomain } from "./release.ts";

export const DOMAIN_POLL = {
  /** Domains per invocation: ≤ 100 KV operations and ≤ 100 + 4 control-database queries. */
  batch: 100,
  /** Cloudflare requests per invocation, retries included. */
  cloudflareRequests: 400,
} as const;

export interface PollReport {
  readonly checked: number;
  readonly activated: number;
  readonly alerts: number;
  readonly removed: number;
}

/**
 * The page: half for settling domains (pending, removing: a customer or a delete is waiting), half
 * for the settled ones (active, moved, blocked: watched for changes on Cloudflare's side), each least
 * recently checked first (never-checked first of all); a half left unused goes to the other. A new
 * domain is thus checked within a few invocations even behind thousands of active ones, and a
 * backlog of stuck pending domains does not stop active ones from being watched.
 */
async function duePage(deps: ControlDeps, batch: number): Promise<DomainRow[]> {
  const page = (where: SQL | undefined) =>
    deps.db
      .select()
      .from(domains)
      .where(where)
      .orderBy(sql`${domains.checkedAt} ASC NULLS FIRST`, asc(domains.hostname))
      .limit(batch);
  const settling = await page(inArray(domains.status, ["pending", "removing"]));
  const settled = await page(and(isNotNull(domains.cfId), inArray(domains.status, ["active", "moved", "blocked"])));
  return sharePage(settling, settled, batch);
}

/** Up to `batch` rows, half from each list, a half one list leaves unused going to the other. */
export function sharePage<T>(settling: readonly T[], settled: readonly T[], batch: number): T[] {
  const fromSettling = Math.min(settling.length, Math.max(Math.ceil(batch / 2), batch - settled.length));
  return [...settling.slice(0, fromSettling), ...settled.slice(0, batch - fromSettling)];
}

export async function pollDomains(
  deps: ControlDeps,
  limits: { batch: number; cloudflareRequests: number } = DOMAIN_POLL,
): Promise<PollReport> {
  if (!deps.customHostnames) return { checked: 0, activated: 0, alerts: 0, removed: 0 };
  return checkDomains(deps, await duePage(deps, limits.batch), limits.cloudflareRequests);
}

/** Checks these domains against Cloudflare (at most `cloudflareRequests` requests) and records what changed. */
export async function checkDomains(
  deps: ControlDeps,
  page: readonly DomainRow[],
  cloudflareRequests: number,
): Promise<PollReport> {
  const api = deps.customHostnames;
  const report = { checked: 0, activated: 0, alerts: 0, removed: 0 };
  if (!api || page.length === 0) return report;
  const owners = await deps.db
    .select()
    .from(tenants)
    .where(inArray(tenants.id, [...new Set(page.map((d) => d.tenantId))]));
  const tenantOf = new Map(owners.map((t) => [t.id, t]));
  const start = api.requests();
  const origin = { value: undefined as string | undefined };
  for (const row of page) {
    if (api.requests() - start + 4 > cloudflareRequests) break;
    const tenant = tenantOf.get(row.tenantId);
    if (!tenant) continue;
    report.checked += 1;
    try {
      await checkOne(deps, tenant, row, origin, report);
    } catch {
      // Cloudflare unavailable for this one: it is tried again on a later invocation.
      await deps.db
        .update(domains)
        .set({ checkedAt: new Date().toISOString() })
        .where(eq(domains.hostname, row.hostname));
    }
  }
  return report;
}

async function checkOne(
  deps: ControlDeps,
  tenant: TenantRow,
  row: DomainRow,
  origin: { value: string | undefined },
  report: { activated: number; alerts: number; removed: number },
): Promise<void> {
  const api = deps.customHostnames;
  if (!api) return;
  if (row.status === "removing") {
    if (await releaseDomain(deps, row)) report.removed += 1;
    return;
  }
  if (!row.cfId) return createCustomHostname(deps, tenant, row.hostname);
  const seen = await api.get(row.cfId);
  if (seen && row.status === "pending") origin.value ??= await api.fallbackOrigin();
  const next = observe(seen, row.status === "pending" ? origin.value : undefined);
  const condition = alertCondition(next);
  await deps.db
    .update(domains)
    .set({ ...next, alerted: condition, checkedAt: new Date().toISOString() })
    .where(eq(domains.hostname, row.hostname));
  if (next.status !== row.status) await projectHost(deps, tenant, row.hostname, next.status === "active");
  if (next.status === "active" && row.status !== "active") report.activated += 1;
  if (condition && condition !== row.alerted) {
    report.alerts += 1;
    await deps
      .alert?.({ event: `domain_${condition}`, tenant: tenant.slug, domain: row.hostname, status: next.status })
      .catch(() => undefined);
  }
}

/** One KV operation: the host's record written (now active) or deleted (no longer active). */
async function projectHost(deps: ControlDeps, tenant: TenantRow, hostname: string, active: boolean): Promise<void> {
  const record = desiredRecords(tenant, [{ hostname, status: active ? "active" : "pending" }]).get(hostKey(hostname));
  if (record) await deps.kv.put(hostKey(hostname), JSON.stringify(record));
  else await deps.kv.delete(hostKey(hostname));
  deps.onProjected?.();
}
