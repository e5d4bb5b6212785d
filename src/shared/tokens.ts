/**
 * Minting tenant-bound access tokens (dev tokens, tests, benches). Production tokens come from the
 * SaaS's own identity provider; the Worker verifies them in src/worker/auth.
 */
import { SignJWT } from "jose";

export const TENANT_CLAIM = "tenant";

export interface TenantTokenInput {
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  readonly tenant: string;
  readonly sub: string;
  readonly ttlSeconds?: number;
  /** Space-separated scopes; the demo store's catalogue routes need `catalog:write`. */
  readonly scope?: string;
}

export async function mintTenantToken(input: TenantTokenInput): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ [TENANT_CLAIM]: input.tenant, ...(input.scope ? { scope: input.scope } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (input.ttlSeconds ?? 3600))
    .sign(new TextEncoder().encode(input.secret));
}

export interface AdminTokenInput {
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  readonly sub: string;
  /** Space-separated scopes, e.g. "tenants:read tenants:write". */
  readonly scope: string;
  readonly ttlSeconds?: number;
}

/** Admin (control-plane) tokens: their own issuer and audience, scopes instead of a tenant. */
export async function mintAdminToken(input: AdminTokenInput): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: input.scope })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (input.ttlSeconds ?? 3600))
    .sign(new TextEncoder().encode(input.secret));
}

/**
 * Every admin scope, the one list the admin API's route guards and the CLI's tokens both use.
 * What each grants is in docs/operating.md. Reading exports and making them are apart: a new export
 * or a download link hands out a tenant's whole database.
 */
export const ADMIN_SCOPES = [
  "tenants:read",
  "tenants:write",
  "tenants:delete",
  "fleet:run",
  "exports:read",
  "exports:create",
] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

export const ALL_ADMIN_SCOPES = ADMIN_SCOPES.join(" ");
