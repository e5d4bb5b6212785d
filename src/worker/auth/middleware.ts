/**
 * Requires a valid tenant-bound token. 401 `unauthorized` (with `WWW-Authenticate`, RFC 6750 §3)
 * for a missing or invalid token; 403 `tenant_mismatch` for a valid token of another tenant, which
 * is also logged as a cross-tenant attempt (OWASP multi-tenant cheat sheet).
 */
import { createMiddleware } from "hono/factory";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";
import { bearerToken, verifyTenantToken } from "./verify.ts";

export function requireTenantToken() {
  return createMiddleware<AppEnv>(async function requireTenantTokenMiddleware(c, next) {
    const tenant = c.get("tenant");
    const result = await verifyTenantToken(
      bearerToken(c.req.header("authorization")),
      { issuer: c.env.JWT_ISSUER, audience: c.env.JWT_AUDIENCE, jwksUrl: c.env.JWKS_URL, secret: c.env.JWT_SECRET },
      tenant.slug,
    );
    if (result.ok) {
      c.set("claims", result.claims);
      c.set("log", c.get("log").with({ sub: result.claims.sub }));
      await next();
      return;
    }
    const log = c.get("log");
    if (result.reason === "tenant_mismatch") {
      log.log("warn", "cross_tenant_attempt", { reason: result.reason });
      throw new AppError(403, "tenant_mismatch", "The token was issued for another tenant.");
    }
    if (result.reason === "misconfigured") log.log("error", "auth_misconfigured", {});
    else log.log("info", "token_rejected", { reason: result.reason });
    const error = result.reason === "missing" ? "" : ', error="invalid_token"';
    throw new AppError(401, "unauthorized", "A valid bearer token for this tenant is required.", {
      headers: { "www-authenticate": `Bearer realm="tenantry"${error}` },
    });
  });
}
