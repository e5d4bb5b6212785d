/**
 * Scope checks for tenant routes: being signed in to a tenant is not the same as being allowed to
 * change it. A route that changes what every user of the tenant sees (the catalogue) asks for a
 * scope in the token's `scope` claim, a space-separated list (RFC 8693 §4.2, RFC 9068 §2.2.3),
 * which the SaaS's identity provider grants to its staff only. A missing scope is 403 `forbidden`
 * with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1). The decision is a
 * pure function; the middleware factory runs after requireTenantToken, so a token of another
 * tenant is still answered `tenant_mismatch` first.
 */
import { createMiddleware } from "hono/factory";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";

/** Scopes the demo store knows. `catalog:write`: create and change products. */
export type TenantScope = "catalog:write";

/** Whether a `scope` claim grants `scope`: an exact, case-sensitive member of the list. */
export function hasScope(claim: unknown, scope: string): boolean {
  return typeof claim === "string" && claim.split(" ").includes(scope);
}

export function requireTenantScope(scope: TenantScope) {
  return createMiddleware<AppEnv>(async function requireTenantScopeMiddleware(c, next) {
    if (!hasScope(c.get("claims").scope, scope)) {
      c.get("log").log("info", "scope_missing", { scope });
      throw new AppError(403, "forbidden", `This action needs the ${scope} scope.`, {
        headers: { "www-authenticate": `Bearer realm="tenantry", error="insufficient_scope", scope="${scope}"` },
      });
    }
    await next();
  });
}
