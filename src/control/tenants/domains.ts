/**
 * A tenant's custom domains. A host name is normalised once (src/shared/host.ts) and is unique
 * across all tenants: mapping a host another tenant holds is a 409, mapping it again to the same
 * tenant is a no-op. Reserved hosts (the admin host, the platform domain and its subdomains) are 422.
 * With Cloudflare configured a domain is a custom hostname: created here (after a quota check),
 * pending until the cron (domains/poll.ts) sees it active; without, it is served at once.
 */
import { and, eq } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { normalizeHost } from "../../shared/host.ts";
import { observe } from "../domains/observe.ts";
import { releaseDomain } from "../domains/release.ts";
import { domains } from "../schema.ts";
import { audited } from "./audit.ts";
import type { ControlDeps } from "./deps.ts";
import { projectTenant } from "./projection.ts";
import { domainsOf, isUniqueViolation, loadBySlug, type TenantRow, type TenantView, view } from "./rows.ts";

const reservedError = () =>
  new AppError(422, "validation_failed", "This host is reserved.", {
    extras: { errors: [{ path: "domain", message: "reserved host" }] },
  });

export function normaliseDomain(input: string, reserved: readonly string[], platformDomain?: string): string {
  const parsed = normalizeHost(input);
  if (!parsed.ok) {
    throw new AppError(422, "validation_failed", "Invalid domain.", {
      extras: { errors: [{ path: "domain", message: `not a valid host name (${parsed.reason})` }] },
    });
  }
  const host = parsed.host;
  if (reserved.includes(host)) throw reservedError();
  // Platform subdomains resolve through slug: records with one wildcard certificate, never a custom hostname.
  if (platformDomain && (host === platformDomain || host.endsWith(`.${platformDomain}`))) throw reservedError();
  return host;
}

/** Creates the Cloudflare custom hostname of a pending domain row and records what it answered. */
export async function createCustomHostname(deps: ControlDeps, row: TenantRow, hostname: string): Promise<void> {
  const api = deps.customHostnames;
  if (!api) return;
  const created = await api.create(hostname, { tenant_id: row.id, tenant: row.slug });
  const origin = await api.fallbackOrigin();
  await deps.db
    .update(domains)
    .set({ cfId: created.id, ...observe(created, origin), checkedAt: new Date().toISOString() })
    .where(eq(domains.hostname, hostname));
}

async function checkQuota(deps: ControlDeps): Promise<void> {
  if (!deps.customHostnames) return;
  const quota = await deps.customHostnames.quota();
  if (quota.used >= quota.allocated)
    throw new AppError(
      409,
      "quota_exceeded",
      `The SaaS zone's custom hostname quota is full (${quota.used} of ${quota.allocated}).`,
      { extras: { quota: { allocated: quota.allocated, used: quota.used } } },
    );
}

export async function addDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.add",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, deps.reservedHosts, deps.platformDomain);
      const row = await loadBySlug(deps, slug);
      if (row.status === "deleted" || row.status === "deleting")
        throw new AppError(409, "invalid_state", "The tenant is deleted.");
      const [owner] = await deps.db.select().from(domains).where(eq(domains.hostname, hostname));
      if (owner && owner.tenantId !== row.id)
        throw new AppError(409, "conflict", "This domain is mapped to another tenant.");
      if (!owner) {
        await checkQuota(deps);
        try {
          await deps.db
            .insert(domains)
            .values({ hostname, tenantId: row.id, status: deps.customHostnames ? "pending" : "active" });
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          throw new AppError(409, "conflict", "This domain is mapped to another tenant.");
        }
        try {
          await createCustomHostname(deps, row, hostname);
        } catch (error) {
          // Refused by Cloudflare (a duplicate, a bad name): nothing to keep. Unavailable: the row
          // stays pending without an id and the cron creates it later.
          if (error instanceof AppError && error.code !== "cloudflare_unavailable")
            await deps.db.delete(domains).where(eq(domains.hostname, hostname));
          throw error;
        }
      }
      await projectTenant(deps, row);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}

/** The tenant's domain row for `hostname`; 404 when it is not mapped to it (or already being removed). */
async function mappedDomain(deps: ControlDeps, tenantId: string, hostname: string) {
  const [found] = await deps.db
    .select()
    .from(domains)
    .where(and(eq(domains.hostname, hostname), eq(domains.tenantId, tenantId)));
  if (!found || found.status === "removing")
    throw new AppError(404, "not_found", "This domain is not mapped to this tenant.");
  return found;
}

export async function removeDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.remove",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, []);
      const row = await loadBySlug(deps, slug);
      const found = await mappedDomain(deps, row.id, hostname);
      // The edge stops serving it first; then Cloudflare and the row (or `removing`, retried by the cron).
      await deps.db.update(domains).set({ status: "removing" }).where(eq(domains.hostname, hostname));
      await projectTenant(deps, row, [hostname]);
      await releaseDomain(deps, found);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}

/**
 * Re-triggers validation (a PATCH with the same ssl) and records the answer; a domain whose custom
 * hostname Cloudflare no longer has (`deleted`) gets a new one.
 */
export async function verifyDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.verify",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, []);
      const row = await loadBySlug(deps, slug);
      const found = await mappedDomain(deps, row.id, hostname);
      if (deps.customHostnames && found.status === "deleted") {
        // Gone on Cloudflare's side (deleted there, or moved for 7 days): a new custom hostname.
        await createCustomHostname(deps, row, hostname);
      } else if (deps.customHostnames && found.cfId) {
        const answer = await deps.customHostnames.revalidate(found.cfId);
        const origin = await deps.customHostnames.fallbackOrigin();
        await deps.db
          .update(domains)
          .set({ ...observe(answer, origin), checkedAt: new Date().toISOString() })
          .where(eq(domains.hostname, hostname));
        await projectTenant(deps, row);
      } else if (deps.customHostnames && found.status === "pending") {
        await createCustomHostname(deps, row, hostname);
      }
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}
