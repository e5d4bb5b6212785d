/**
 * Deterministic Neon names for a tenant: `tenant-<slug>` branch, `tenant_<slug>` database,
 * `<slug>_owner` / `<slug>_app` roles (dashes in the slug become underscores). Deterministic names
 * are what make provisioning resumable: an interrupted run finds what it already created by name
 * instead of creating a second branch. Pure; refuses slugs that cannot make valid names.
 */
import { ProvisionerError } from "../types.ts";

export interface NeonTenantNames {
  readonly branch: string;
  readonly database: string;
  /** Owns the database; used for migrations only. */
  readonly ownerRole: string;
  /** Tenant app traffic. */
  readonly appRole: string;
}

const SLUG = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

/** Deterministic Neon names for a tenant slug; refuses slugs that cannot make valid names. */
export function neonNames(slug: string): NeonTenantNames {
  if (!SLUG.test(slug) || slug.includes("--")) {
    throw new ProvisionerError("invalid_input", `invalid tenant slug ${JSON.stringify(slug)}`);
  }
  const base = slug.replaceAll("-", "_");
  // Postgres reserves role names starting with `pg_`.
  if (base.startsWith("pg_")) {
    throw new ProvisionerError("invalid_input", `tenant slug ${JSON.stringify(slug)} would make a reserved role name`);
  }
  return { branch: `tenant-${slug}`, database: `tenant_${base}`, ownerRole: `${base}_owner`, appRole: `${base}_app` };
}
