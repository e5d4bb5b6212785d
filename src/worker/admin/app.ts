/**
 * The admin API (control plane), served only on ADMIN_HOST: one router per resource, mounted behind
 * the admin token check (auth.ts; each route declares its scope), with the OpenAPI document at
 * /openapi.json generated from the routes' own schemas. Request validation failures and malformed
 * bodies are answered as problem+json like every other error. Every action lands in the audit log.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError } from "../../shared/errors.ts";
import { installCommon } from "../http/common.ts";
import { configureEndpoint } from "../tenant-db/middleware.ts";
import { type AdminEnv, adminAuth } from "./auth.ts";
import { auditRouter, auditRoutes } from "./routes/audit.ts";
import { domainRoutes, domainsRouter } from "./routes/domains.ts";
import { exportRoutes, exportsRouter } from "./routes/exports.ts";
import { keyRoutes, keysRouter } from "./routes/keys.ts";
import { migrationRoutes, migrationsRouter } from "./routes/migrations.ts";
import { reconcileRouter, reconcileRoutes } from "./routes/reconcile.ts";
import { tenantRoutes, tenantsRouter } from "./routes/tenants.ts";

/** Every resource: its route definitions and its router, in the order the OpenAPI document lists them. */
export const adminResources = [
  { routes: tenantRoutes, router: tenantsRouter },
  { routes: domainRoutes, router: domainsRouter },
  { routes: reconcileRoutes, router: reconcileRouter },
  { routes: keyRoutes, router: keysRouter },
  { routes: auditRoutes, router: auditRouter },
  { routes: exportRoutes, router: exportsRouter },
  { routes: migrationRoutes, router: migrationsRouter },
] as const;

export function createAdminApp() {
  const admin = new OpenAPIHono<AdminEnv>({
    // Validation failures become our problem+json, like everywhere else. The routers are mounted
    // below, and a router without a hook of its own uses this one.
    defaultHook: (result) => {
      if (!result.success) {
        throw new AppError(422, "validation_failed", "The request has invalid fields.", {
          extras: {
            errors: result.error.issues
              .slice(0, 20)
              .map((issue) => ({ path: issue.path.join(".") || "(root)", message: issue.message })),
          },
        });
      }
    },
  });

  installCommon(admin);
  // The OpenAPI validators throw Hono's HTTPException for a body that is not JSON (400) or not
  // declared as JSON (415): answer those as problem+json with their status, not as a 500.
  const toProblem = (admin as unknown as { errorHandler: ErrorHandler<AdminEnv> }).errorHandler;
  admin.onError((error, c) =>
    toProblem(
      error instanceof HTTPException && error.status < 500
        ? new AppError(error.status, "bad_request", error.message || undefined, { cause: error })
        : error,
      c,
    ),
  );
  admin.doc("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Tenantry admin API",
      version: "1.0.0",
      description: "Control plane: tenants, domains, KV reconcile, audit.",
    },
  });
  admin.use("/v1/*", adminAuth(), async function controlEndpoint(c, next) {
    // Control-plane queries go through the same Neon HTTP endpoint as tenant queries (a gateway in dev).
    configureEndpoint(c.env.NEON_FETCH_ENDPOINT);
    await next();
  });
  for (const { router } of adminResources) admin.route("/", router());
  return admin;
}
