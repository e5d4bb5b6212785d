/**
 * Cloudflare Access in front of the admin host (production sign-in). Access signs a JWT for every
 * request it lets through and sends it in `Cf-Access-Jwt-Assertion`; the Worker verifies it itself
 * (Access docs, "Validate JWTs"): RS256 against the team's JWKS at
 * `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`, issuer the team domain, audience the
 * application's AUD tag. The identity's email (or a service token's common name) and any `groups`
 * claim are mapped to admin scopes by ACCESS_SCOPES, so who may do what stays in the Worker's config.
 */
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from "jose";
import { ADMIN_SCOPES } from "../../shared/tokens.ts";

export const ACCESS_HEADER = "cf-access-jwt-assertion";

/** ACCESS_SCOPES: identity (an email, `group:<name>`, or `*` for anyone Access let in) → scopes. */
export type ScopeMap = Readonly<Record<string, readonly string[]>>;

export function parseScopeMap(text: string | undefined): ScopeMap {
  try {
    const parsed = JSON.parse(text || "{}") as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed).map(([who, scopes]) => [who, Array.isArray(scopes) ? scopes.map(String) : []]),
    );
  } catch {
    return {};
  }
}

/** The admin scopes an identity gets: the union of its email's, its groups' and `*`'s, known scopes only. */
export function scopesFor(map: ScopeMap, email: string, groups: readonly string[]): string[] {
  const keys = ["*", email.toLowerCase(), ...groups.map((g) => `group:${g}`)];
  const granted = new Set(keys.flatMap((key) => map[key] ?? []));
  return ADMIN_SCOPES.filter((scope) => granted.has(scope));
}

const jwksCache = new Map<string, JWTVerifyGetKey>();

export interface AccessIdentity {
  readonly sub: string;
  readonly scopes: string[];
}

/** True when this deployment expects Cloudflare Access (then the dev token sign-in is off). */
export const accessConfigured = (env: Env) => Boolean(env.ACCESS_TEAM_DOMAIN && env.ACCESS_AUD);

/** The verified Access identity of a request, or undefined (no header, bad signature, wrong audience). */
export async function verifyAccess(env: Env, assertion: string | undefined): Promise<AccessIdentity | undefined> {
  if (!assertion || !accessConfigured(env)) return undefined;
  const team = `https://${env.ACCESS_TEAM_DOMAIN.replace(/^https?:\/\//, "").replace(/\/+$/, "")}`;
  let jwks = jwksCache.get(team);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(`${team}/cdn-cgi/access/certs`), { cooldownDuration: 30_000 });
    jwksCache.set(team, jwks);
  }
  try {
    const { payload } = await jwtVerify(assertion, jwks, {
      algorithms: ["RS256"],
      issuer: team,
      audience: env.ACCESS_AUD,
      requiredClaims: ["exp", "sub"],
      clockTolerance: 5,
    });
    const who = typeof payload.email === "string" ? payload.email : (payload.common_name ?? payload.sub);
    if (typeof who !== "string" || !who) return undefined;
    const groups = Array.isArray(payload.groups) ? payload.groups.map(String) : [];
    return { sub: who, scopes: scopesFor(parseScopeMap(env.ACCESS_SCOPES), who, groups) };
  } catch {
    return undefined;
  }
}
