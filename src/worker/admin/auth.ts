/**
 * Who may call the admin API, and for what. `adminAuth()` verifies the admin token once per request
 * (its own issuer and audience, so a tenant token is refused; a `scope` claim is required) and puts
 * the subject and its scopes in typed context variables. `requireScope(scope)` is the route
 * middleware every admin route declares in its definition, so a route's scope is read where the
 * route is defined rather than in a call its handler has to remember. Being route middleware, it runs
 * before the request is validated: a caller without the scope learns nothing about the route's
 * inputs. Both refusals carry an RFC 6750 §3 `WWW-Authenticate` challenge.
 */
import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { AppError } from "../../shared/errors.ts";
import type { AdminScope } from "../../shared/tokens.ts";
import { bearerToken, verifyJwt } from "../auth/verify.ts";
import type { AppEnv } from "../types.ts";

/** What `adminAuth()` sets: the token's subject (the audit log's actor) and its scopes. */
export interface AdminVariables {
  adminSub: string;
  adminScopes: ReadonlySet<string>;
}

export type AdminEnv = AppEnv & { Variables: AppEnv["Variables"] & AdminVariables };

/** 401 `unauthorized` unless the request carries a valid admin token; sets `adminSub` and `adminScopes`. */
export function adminAuth() {
  return createMiddleware<AdminEnv>(async function adminAuthMiddleware(c, next) {
    const result = await verifyJwt(
      bearerToken(c.req.header("authorization")),
      {
        issuer: c.env.ADMIN_JWT_ISSUER,
        audience: c.env.ADMIN_JWT_AUDIENCE,
        jwksUrl: c.env.ADMIN_JWKS_URL,
        secret: c.env.ADMIN_JWT_SECRET,
      },
      { issuer: c.env.ADMIN_JWT_ISSUER, audience: c.env.ADMIN_JWT_AUDIENCE, requiredClaims: ["scope"] },
    );
    if (!result.ok) {
      c.get("log").log(result.reason === "misconfigured" ? "error" : "info", "admin_token_rejected", {
        reason: result.reason,
      });
      throw new AppError(401, "unauthorized", "A valid admin token is required.", {
        headers: {
          "www-authenticate": `Bearer realm="tenantry-admin"${result.reason === "missing" ? "" : ', error="invalid_token"'}`,
        },
      });
    }
    const scope = result.payload.scope;
    c.set("adminSub", result.payload.sub as string);
    c.set("adminScopes", new Set(typeof scope === "string" ? scope.split(" ").filter(Boolean) : []));
    c.set("log", c.get("log").with({ admin: result.payload.sub as string }));
    await next();
  });
}

/** A route's scope middleware; `scope` says which, so the route tables can be listed with their scopes. */
export type ScopeMiddleware = MiddlewareHandler<AdminEnv> & { readonly scope: AdminScope };

/** 403 `forbidden` (`insufficient_scope`) unless the admin token's scopes include `scope`, exactly. */
export function requireScope(scope: AdminScope): ScopeMiddleware {
  const middleware = createMiddleware<AdminEnv>(async function requireScopeMiddleware(c, next) {
    if (!c.get("adminScopes").has(scope)) {
      c.get("log").log("warn", "admin_scope_missing", { scope });
      throw new AppError(403, "forbidden", `This action needs the ${scope} scope.`, {
        headers: { "www-authenticate": `Bearer realm="tenantry-admin", error="insufficient_scope", scope="${scope}"` },
      });
    }
    await next();
  });
  return Object.assign(middleware, { scope });
}

/** The scope a route definition requires, or undefined when it declares no `requireScope` middleware. */
export function scopeOf(route: { middleware?: unknown }): AdminScope | undefined {
  const middleware = Array.isArray(route.middleware) ? route.middleware : [route.middleware];
  return middleware.find((handler): handler is ScopeMiddleware => typeof handler?.scope === "string")?.scope;
}
