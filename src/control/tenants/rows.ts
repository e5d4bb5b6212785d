/**
 * A tenant's row in the control database and what the admin API shows of it. The reads and the one
 * write every operation shares live here, so "no such tenant" is always the same 404 and every
 * update stamps `updated_at`; the view is built in one place so a secret never reaches a response.
 */
import { and, asc, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { type DnsInstructions, type DomainState, domains, type TenantState, tenants } from "../schema.ts";
import type { ControlDeps } from "./deps.ts";

export type TenantRow = typeof tenants.$inferSelect;
export type DomainRow = typeof domains.$inferSelect;

/** What the admin API shows of a domain: its state and what the customer must publish. */
export interface DomainView {
  readonly hostname: string;
  readonly status: DomainState;
  /** Whether it is a Cloudflare custom hostname (false: served without one, e.g. no Cloudflare configured). */
  readonly customHostname: boolean;
  readonly sslStatus: string | null;
  readonly validationErrors: string[];
  readonly dns: DnsInstructions | null;
  readonly checkedAt: string | null;
}

export function domainView(row: DomainRow): DomainView {
  return {
    hostname: row.hostname,
    status: row.status,
    customHostname: row.cfId !== null,
    sslStatus: row.sslStatus,
    validationErrors: row.validationErrors ?? [],
    dns: row.dns,
    checkedAt: row.checkedAt,
  };
}

/** What the admin API shows of a tenant: never a secret. */
export interface TenantView {
  readonly id: string;
  readonly slug: string;
  readonly status: TenantState;
  readonly region: string;
  readonly plan: string;
  readonly provisioner: string;
  readonly schemaVersion: string | null;
  /** Host names mapped to the tenant (any state but `removing`). */
  readonly domains: string[];
  readonly domainDetails: DomainView[];
  readonly failedStep: string | null;
  readonly failureReason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly deletedAt: string | null;
}

export function view(row: TenantRow, domainRows: readonly DomainRow[]): TenantView {
  return {
    id: row.id,
    slug: row.slug,
    status: row.status,
    region: row.region,
    plan: row.plan,
    provisioner: row.provisioner,
    schemaVersion: row.schemaVersion,
    domains: domainRows.filter((d) => d.status !== "removing").map((d) => d.hostname),
    domainDetails: domainRows.map(domainView),
    failedStep: row.failedStep,
    failureReason: row.failureReason,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    deletedAt: row.deletedAt,
  };
}

export async function loadBySlug(deps: ControlDeps, slug: string): Promise<TenantRow> {
  const [row] = await deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  if (!row) throw new AppError(404, "not_found", "No such tenant.");
  return row;
}

/** A tenant's domain rows, by host name. */
export async function domainsOf(deps: ControlDeps, tenantId: string): Promise<DomainRow[]> {
  return deps.db.select().from(domains).where(eq(domains.tenantId, tenantId)).orderBy(asc(domains.hostname));
}

/**
 * Updates a tenant's row. With `from`, only while its status is still one of those, in the same
 * statement: a step that read the row earlier cannot undo what another request did meanwhile (an
 * onboarding run must never bring a tenant deleted under it back as `migrating` or `active`).
 * A tenant that has moved on is a 409 `invalid_state`.
 */
export async function updateTenant(
  deps: ControlDeps,
  id: string,
  values: Partial<typeof tenants.$inferInsert>,
  from?: readonly TenantState[],
): Promise<TenantRow> {
  const [row] = await deps.db
    .update(tenants)
    .set({ ...values, updatedAt: new Date().toISOString() })
    .where(from ? and(eq(tenants.id, id), inArray(tenants.status, [...from])) : eq(tenants.id, id))
    .returning();
  if (row) return row;
  const [exists] = from ? await deps.db.select({ status: tenants.status }).from(tenants).where(eq(tenants.id, id)) : [];
  if (exists) throw new AppError(409, "invalid_state", `The tenant is ${exists.status} now; it was changed meanwhile.`);
  throw new AppError(404, "not_found", "No such tenant.");
}

/** No onboarding run holds the tenant: its lease is unset or has lapsed (a crashed run's does). */
export const onboardingLeaseFree = () =>
  or(isNull(tenants.onboardingLeaseUntil), lt(tenants.onboardingLeaseUntil, sql`now()`));

/** A Postgres unique violation (23505), optionally of one constraint, however deep the driver wrapped it. */
export const isUniqueViolation = (error: unknown, constraint?: string): boolean => {
  let current = error as { code?: unknown; constraint?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 3; depth++) {
    if (current.code === "23505") return constraint === undefined || current.constraint === constraint;
    current = current.cause as typeof current;
  }
  return false;
};
