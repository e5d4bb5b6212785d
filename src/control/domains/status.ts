/**
 * `domains status`: a tenant's domains, with the ones still settling (pending, removing) checked
 * against Cloudflare first, so an operator sees a domain turn active without waiting for the cron.
 */
import { and, eq, inArray } from "drizzle-orm";
import { domains } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import { type DomainView, domainsOf, domainView, loadBySlug } from "../tenants/rows.ts";
import { checkDomains } from "./poll.ts";

/** A tenant has few domains: all of its settling ones fit in one request's budget. */
const STATUS_REQUESTS = 100;

export async function domainStatus(deps: ControlDeps, slug: string): Promise<{ slug: string; items: DomainView[] }> {
  const tenant = await loadBySlug(deps, slug);
  const settling = await deps.db
    .select()
    .from(domains)
    .where(and(eq(domains.tenantId, tenant.id), inArray(domains.status, ["pending", "removing"])));
  await checkDomains(deps, settling, STATUS_REQUESTS);
  return { slug, items: (await domainsOf(deps, tenant.id)).map(domainView) };
}
