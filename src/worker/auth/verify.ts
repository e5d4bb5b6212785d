/**
 * Tenant-bound access tokens (RFC 7519, with RFC 8725 best practice): algorithms pinned per key
 * source, `iss`, `aud`, `exp` and `sub` required, small clock tolerance, and the tenant claim checked
 * against the tenant the host resolved to. Tenant tokens must also say they are access tokens in
 * their `typ` header (`JWT`, or `at+jwt` from RFC 9068 §2.1), so that another kind of JWT signed by
 * the same key (an ID token, a logout token) is not taken for one (RFC 8725 §3.11).
 * Returns a tagged result; the middleware maps it to HTTP.
 */
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import { TENANT_CLAIM } from "../../shared/tokens.ts";

export interface TenantClaims extends JWTPayload {
  readonly sub: string;
  readonly tenant: string;
  readonly scope?: string;
}

export interface AuthConfig {
  readonly issuer: string;
  readonly audience: string;
  /** When set, keys come from this JWKS (asymmetric algorithms only). */
  readonly jwksUrl?: string | undefined;
  /** HMAC secret (dev) used when no JWKS URL is set. */
  readonly secret?: string | undefined;
}

export type AuthFailure =
  | "missing"
  | "malformed"
  | "invalid"
  | "expired"
  | "claims"
  | "wrong_type"
  | "tenant_mismatch"
  | "misconfigured";
export type AuthResult = { ok: true; claims: TenantClaims } | { ok: false; reason: AuthFailure };

/** Asymmetric algorithms accepted from a JWKS; HS256 only with the configured secret (never both). */
const JWKS_ALGORITHMS = ["ES256", "RS256", "EdDSA"];
const HMAC_ALGORITHMS = ["HS256"];
const CLOCK_TOLERANCE_S = 5;
const MIN_SECRET_BYTES = 32;

/** Module-scope JWKS cache: jose refetches on an unknown `kid` (with a cooldown) by itself. */
const jwksCache = new Map<string, JWTVerifyGetKey>();

function keySource(config: AuthConfig): { key: JWTVerifyGetKey | Uint8Array; algorithms: string[] } | undefined {
  if (config.jwksUrl) {
    let jwks = jwksCache.get(config.jwksUrl);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
      jwksCache.set(config.jwksUrl, jwks);
    }
    return { key: jwks, algorithms: JWKS_ALGORITHMS };
  }
  if (config.secret && new TextEncoder().encode(config.secret).length >= MIN_SECRET_BYTES) {
    return { key: new TextEncoder().encode(config.secret), algorithms: HMAC_ALGORITHMS };
  }
  return undefined;
}

/** Extracts the token from `Authorization: Bearer <token>` (RFC 6750 §2.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+([A-Za-z0-9._~+/-]+=*)\s*$/i);
  return match?.[1];
}

export interface JwtChecks {
  readonly issuer: string;
  readonly audience: string;
  readonly requiredClaims: readonly string[];
  /** Accepted `typ` header values, lowercase, without `application/`; omitted: any or none. */
  readonly types?: readonly string[];
}

/** Tenant access tokens: plain `JWT` (what most providers send) or RFC 9068's `at+jwt`. */
export const TENANT_TOKEN_TYPES = ["jwt", "at+jwt"] as const;

/**
 * Whether a `typ` header is one of `types`. Media types are case-insensitive and RFC 7515 §4.1.9
 * lets `application/` be omitted, so `JWT`, `jwt` and `application/at+jwt` are all recognised.
 */
export function isAcceptedType(typ: unknown, types: readonly string[]): boolean {
  if (typeof typ !== "string") return false;
  const lower = typ.toLowerCase();
  return types.includes(lower.startsWith("application/") ? lower.slice("application/".length) : lower);
}

/** Verifies signature, algorithm, issuer, audience, expiry and required claims; tagged result. */
export async function verifyJwt(
  token: string | undefined,
  config: AuthConfig,
  checks: JwtChecks,
): Promise<{ ok: true; payload: JWTPayload } | { ok: false; reason: AuthFailure }> {
  if (!token) return { ok: false, reason: "missing" };
  if (token.split(".").length !== 3) return { ok: false, reason: "malformed" };
  const source = keySource(config);
  if (!source) return { ok: false, reason: "misconfigured" };
  try {
    const verified = await jwtVerify(token, source.key as Uint8Array, {
      algorithms: source.algorithms,
      issuer: checks.issuer,
      audience: checks.audience,
      requiredClaims: ["exp", "sub", ...checks.requiredClaims],
      clockTolerance: CLOCK_TOLERANCE_S,
    });
    if (checks.types && !isAcceptedType(verified.protectedHeader.typ, checks.types))
      return { ok: false, reason: "wrong_type" };
    if (typeof verified.payload.sub !== "string" || verified.payload.sub.length === 0)
      return { ok: false, reason: "claims" };
    return { ok: true, payload: verified.payload };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_JWT_EXPIRED") return { ok: false, reason: "expired" };
    if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return { ok: false, reason: "claims" };
    return { ok: false, reason: "invalid" };
  }
}

export async function verifyTenantToken(
  token: string | undefined,
  config: AuthConfig,
  tenantSlug: string,
): Promise<AuthResult> {
  const result = await verifyJwt(token, config, {
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: [TENANT_CLAIM],
    types: TENANT_TOKEN_TYPES,
  });
  if (!result.ok) return result;
  const tenant = result.payload[TENANT_CLAIM];
  if (typeof tenant !== "string") return { ok: false, reason: "claims" };
  if (tenant !== tenantSlug) return { ok: false, reason: "tenant_mismatch" };
  return { ok: true, claims: result.payload as TenantClaims };
}
