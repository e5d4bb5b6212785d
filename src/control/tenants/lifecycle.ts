/**
 * A tenant's life after onboarding: reading it (one, or a page of the fleet), suspending and
 * resuming it (the edge answers a suspended tenant's requests with 403 but keeps its records), and
 * deleting it. Each change is committed in the control database first and projected to KV after.
 */
import { and, asc, eq, gt, inArray, ne, type SQL } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { releaseTenantDomains } from "../domains/release.ts";
import { domains, type TenantState, tenants } from "../schema.ts";
import { audited } from "./audit.ts";
import { type ControlDeps, provisionerFor } from "./deps.ts";
import { projectTenant } from "./projection.ts";
import {
  domainsOf,
  loadBySlug,
  onboardingLeaseFree,
  type TenantRow,
  type TenantView,
  updateTenant,
  view,
} from "./rows.ts";

export async function getTenant(deps: ControlDeps, slug: string): Promise<TenantView> {
  const row = await loadBySlug(deps, slug);
  return view(row, await domainsOf(deps, row.id));
}

export interface ListOptions {
  readonly status?: TenantState | undefined;
  readonly region?: string | undefined;
  readonly limit: number;
  /** Opaque cursor from the previous page (the last tenant id). */
  readonly cursor?: string | undefined;
}

export async function listTenants(
  deps: ControlDeps,
  options: ListOptions,
): Promise<{ items: TenantView[]; next?: string }> {
  const filters: SQL[] = [];
  if (options.status) filters.push(eq(tenants.status, options.status));
  if (options.region) filters.push(eq(tenants.region, options.region));
  if (options.cursor) filters.push(gt(tenants.id, options.cursor));
  const rows = await deps.db
    .select()
    .from(tenants)
    .where(filters.length ? and(...filters) : undefined)
    .orderBy(asc(tenants.id))
    .limit(options.limit + 1);
  const page = rows.slice(0, options.limit);
  const ids = page.map((row) => row.id);
  const hostRows = ids.length
    ? await deps.db.select().from(domains).where(inArray(domains.tenantId, ids)).orderBy(asc(domains.hostname))
    : [];
  const items = page.map((row) =>
    view(
      row,
      hostRows.filter((h) => h.tenantId === row.id),
    ),
  );
  const last = page.at(-1);
  return rows.length > options.limit && last ? { items, next: last.id } : { items };
}

async function setStatus(
  deps: ControlDeps,
  slug: string,
  action: string,
  from: TenantState,
  to: TenantState,
): Promise<TenantView> {
  return audited(deps, action, slug, async () => {
    const row = await loadBySlug(deps, slug);
    if (row.status === to) return view(row, await domainsOf(deps, row.id));
    if (row.status !== from)
      throw new AppError(
        409,
        "invalid_state",
        `Only a ${from} tenant can be ${to === "suspended" ? "suspended" : "resumed"}; this one is ${row.status}.`,
      );
    const updated = await updateTenant(deps, row.id, { status: to });
    await projectTenant(deps, updated);
    return view(updated, await domainsOf(deps, row.id));
  });
}

export const suspendTenant = (deps: ControlDeps, slug: string) =>
  setStatus(deps, slug, "tenant.suspend", "active", "suspended");
export const resumeTenant = (deps: ControlDeps, slug: string) =>
  setStatus(deps, slug, "tenant.resume", "suspended", "active");

/**
 * The delete's first write, and its only check against onboarding: `deleting` is set in one statement
 * only while no onboarding run holds the tenant's lease (409 `conflict` while one does, as a second
 * onboarding run gets). From then on onboarding's own writes, guarded by status, cannot move the
 * tenant back, and onboarding refuses a `deleting` tenant; an interrupted delete is resumed by
 * deleting again. Answers the row as it is when another delete has finished first.
 */
async function markDeleting(deps: ControlDeps, id: string): Promise<TenantRow> {
  const [marked] = await deps.db
    .update(tenants)
    .set({ status: "deleting", updatedAt: new Date().toISOString() })
    .where(and(eq(tenants.id, id), ne(tenants.status, "deleted"), onboardingLeaseFree()))
    .returning();
  if (marked) return marked;
  const [now] = await deps.db.select().from(tenants).where(eq(tenants.id, id));
  if (!now) throw new AppError(404, "not_found", "No such tenant.");
  if (now.status === "deleted") return now;
  throw new AppError(409, "conflict", "This tenant is being onboarded right now; delete it when that has finished.");
}

/**
 * GDPR delete: the slug must be echoed back; KV records go first (the edge stops serving), then the
 * database and role are dropped, the domains released (custom hostnames too; domains/release.ts), then the tenant is marked deleted with its secrets erased. The
 * audit record stays. Safe to repeat after an interruption.
 */
export async function deleteTenant(deps: ControlDeps, slug: string, confirm: string | undefined): Promise<TenantView> {
  return audited(deps, "tenant.delete", slug, async () => {
    if (confirm !== slug) {
      throw new AppError(
        422,
        "confirmation_required",
        "Deleting a tenant drops its database: echo its slug as confirmation.",
        {
          extras: { errors: [{ path: "confirm", message: "must equal the tenant's slug" }] },
        },
      );
    }
    const row = await loadBySlug(deps, slug);
    if (row.status === "deleted") return view(row, []);
    const hostnames = await domainsOf(deps, row.id);
    const deleting = await markDeleting(deps, row.id);
    if (deleting.status === "deleted") return view(deleting, []);
    await projectTenant(deps, deleting);
    const provisioner = provisionerFor(deps, row.provisioner);
    if (row.provisioner !== "url") {
      await provisioner.deprovision({ tenantId: row.id, slug: row.slug, region: row.region }, row.resourceRef ?? {});
    }
    await releaseTenantDomains(deps, row.id);
    const deleted = await updateTenant(deps, row.id, {
      status: "deleted",
      deletedAt: new Date().toISOString(),
      dbSecret: null,
      migrationSecret: null,
    });
    await projectTenant(
      deps,
      deleted,
      hostnames.map((d) => d.hostname),
    );
    return view(deleted, await domainsOf(deps, row.id));
  });
}
