/**
 * Tenants: list, create (onboarding: provision → migrate → active), show, retry a stopped
 * onboarding, suspend, resume, and delete for good (optionally after a final export). Reading needs
 * tenants:read, changing tenants:write, deleting tenants:delete.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { finalExport } from "../../../control/export/service.ts";
import { createTenant } from "../../../control/tenants/create.ts";
import {
  deleteTenant,
  getTenant,
  listTenants,
  resumeTenant,
  suspendTenant,
} from "../../../control/tenants/lifecycle.ts";
import { retryOnboarding } from "../../../control/tenants/onboarding.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps, exportDeps } from "../request-deps.ts";
import {
  CreateTenantBody,
  DeleteTenantQuery,
  json,
  ListTenantsQuery,
  Problem,
  problems,
  SlugParam,
  Tenant,
  TenantPage,
} from "../schemas.ts";

export const tenantRoutes = {
  list: createRoute({
    method: "get",
    path: "/v1/tenants",
    summary: "List tenants",
    middleware: requireScope("tenants:read"),
    request: { query: ListTenantsQuery },
    responses: { 200: json(TenantPage, "A page of tenants"), ...problems },
  }),
  create: createRoute({
    method: "post",
    path: "/v1/tenants",
    summary: "Create a tenant and onboard it (provision → migrate → active)",
    middleware: requireScope("tenants:write"),
    request: { body: { required: true, content: { "application/json": { schema: CreateTenantBody } } } },
    responses: { 201: json(Tenant, "The tenant, active"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/tenants/{slug}",
    summary: "Show a tenant",
    middleware: requireScope("tenants:read"),
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  retry: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/retry",
    summary: "Resume a failed or interrupted onboarding where it stopped",
    middleware: requireScope("tenants:write"),
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  suspend: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/suspend",
    summary: "Suspend a tenant (its hosts answer 403 tenant_suspended)",
    middleware: requireScope("tenants:write"),
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  resume: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/resume",
    summary: "Resume a suspended tenant",
    middleware: requireScope("tenants:write"),
    request: { params: SlugParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/tenants/{slug}",
    summary: "Delete a tenant for good: drops its database and role (GDPR)",
    middleware: requireScope("tenants:delete"),
    request: { params: SlugParam, query: DeleteTenantQuery },
    responses: {
      200: json(Tenant, "The tenant, deleted"),
      ...problems,
      502: {
        description: "export_failed: the final export failed (finalExport=true); the tenant was not deleted",
        content: { "application/problem+json": { schema: Problem } },
      },
    },
  }),
};

export function tenantsRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(tenantRoutes.list, async (c) => c.json(await listTenants(controlDeps(c), c.req.valid("query")), 200));
  router.openapi(tenantRoutes.create, async (c) =>
    c.json(await createTenant(controlDeps(c), c.req.valid("json")), 201),
  );
  router.openapi(tenantRoutes.show, async (c) =>
    c.json(await getTenant(controlDeps(c), c.req.valid("param").slug), 200),
  );
  router.openapi(tenantRoutes.retry, async (c) =>
    c.json(await retryOnboarding(controlDeps(c), c.req.valid("param").slug), 200),
  );
  router.openapi(tenantRoutes.suspend, async (c) =>
    c.json(await suspendTenant(controlDeps(c), c.req.valid("param").slug), 200),
  );
  router.openapi(tenantRoutes.resume, async (c) =>
    c.json(await resumeTenant(controlDeps(c), c.req.valid("param").slug), 200),
  );
  router.openapi(tenantRoutes.remove, async (c) => {
    const { slug } = c.req.valid("param");
    const { confirm, finalExport: wantExport } = c.req.valid("query");
    // The final export runs first and must succeed: the database is gone afterwards.
    if (wantExport === "true" && confirm === slug) await finalExport(exportDeps(c), slug);
    return c.json(await deleteTenant(controlDeps(c), slug, confirm), 200);
  });
  return router;
}
