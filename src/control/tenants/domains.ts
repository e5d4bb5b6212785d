/**
 * A tenant's custom domains. A host name is normalised once (src/shared/host.ts) and is unique
 * across all tenants: mapping a host another tenant holds is a 409, mapping it again to the same
 * tenant is a no-op. Reserved hosts (the admin host) are refused. Every change is re-projected to KV.
 */
import { and, eq } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { normalizeHost } from "../../shared/host.ts";
import { domains } from "../schema.ts";
import { audited } from "./audit.ts";
import type { ControlDeps } from "./deps.ts";
import { projectTenant } from "./projection.ts";
import { domainsOf, isUniqueViolation, loadBySlug, type TenantView, view } from "./rows.ts";

export function normaliseDomain(input: string, reserved: readonly string[]): string {
  const parsed = normalizeHost(input);
  if (!parsed.ok) {
    throw new AppError(422, "validation_failed", "Invalid domain.", {
      extras: { errors: [{ path: "domain", message: `not a valid host name (${parsed.reason})` }] },
    });
  }
  if (reserved.includes(parsed.host)) {
    throw new AppError(422, "validation_failed", "This host is reserved.", {
      extras: { errors: [{ path: "domain", message: "reserved host" }] },
    });
  }
  return parsed.host;
}

export async function addDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.add",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, deps.reservedHosts);
      const row = await loadBySlug(deps, slug);
      if (row.status === "deleted" || row.status === "deleting")
        throw new AppError(409, "invalid_state", "The tenant is deleted.");
      try {
        await deps.db.insert(domains).values({ hostname, tenantId: row.id });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const [owner] = await deps.db.select().from(domains).where(eq(domains.hostname, hostname));
        if (owner?.tenantId !== row.id) throw new AppError(409, "conflict", "This domain is mapped to another tenant.");
      }
      await projectTenant(deps, row);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}

export async function removeDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.remove",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, []);
      const row = await loadBySlug(deps, slug);
      const removed = await deps.db
        .delete(domains)
        .where(and(eq(domains.hostname, hostname), eq(domains.tenantId, row.id)))
        .returning();
      if (removed.length === 0) throw new AppError(404, "not_found", "This domain is not mapped to this tenant.");
      await projectTenant(deps, row, [hostname]);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}
