/**
 * The custom hostname half of `reconcile`: custom hostnames on the SaaS zone that no domain holds
 * (a create whose answer was lost, one made by hand) and domains whose custom hostname Cloudflare no
 * longer has. Reported, not repaired: deleting a hostname a customer may be serving from is an
 * operator's call (`domains remove`), and a missing one shows as `deleted` after the cron's next pass.
 * The zone is listed 50 a page, up to `maxPages` per call (the subrequest limit), `complete` says
 * whether it got to the end.
 */
import { isNotNull } from "drizzle-orm";
import { domains } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";

export interface HostnameOrphans {
  /** Custom hostnames (host names) with no domain row. */
  readonly hostnamesWithoutDomain: string[];
  /** Domains (host names) whose custom hostname id Cloudflare does not list. */
  readonly domainsWithoutHostname: string[];
  readonly complete: boolean;
}

export async function hostnameOrphans(deps: ControlDeps, maxPages = 100): Promise<HostnameOrphans | undefined> {
  const api = deps.customHostnames;
  if (!api) return undefined;
  const seen = new Map<string, string>();
  let page = 1;
  let more = true;
  for (; more && page <= maxPages; page++) {
    const answer = await api.list(page);
    for (const item of answer.items) seen.set(item.id, item.hostname);
    more = answer.more;
  }
  const rows = await deps.db
    .select({ hostname: domains.hostname, cfId: domains.cfId, status: domains.status })
    .from(domains)
    .where(isNotNull(domains.cfId));
  const known = new Set(rows.map((r) => r.cfId));
  return {
    hostnamesWithoutDomain: [...seen].filter(([id]) => !known.has(id)).map(([, hostname]) => hostname),
    // Only a complete listing can prove an id absent; `deleted` rows are already known to be gone.
    domainsWithoutHostname: more
      ? []
      : rows.filter((r) => r.status !== "deleted" && !seen.has(r.cfId ?? "")).map((r) => r.hostname),
    complete: !more,
  };
}
