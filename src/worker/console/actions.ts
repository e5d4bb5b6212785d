/**
 * The console's tenant, domain and export actions: each one is a POST from a form on the tenant page, calls
 * the very control-plane function the admin API route calls (so the rules, the audit record and its
 * actor, the signed-in identity, are the same), and redirects back (303, POST/redirect/GET).
 * Each declares its scope with `requireScope`, as the admin routes do: a missing scope is a 403.
 */
import { Hono } from "hono";
import { requestExport } from "../../control/export/service.ts";
import { addDomain, removeDomain, verifyDomain } from "../../control/tenants/domains.ts";
import { deleteTenant, resumeTenant, suspendTenant } from "../../control/tenants/lifecycle.ts";
import { retryOnboarding } from "../../control/tenants/onboarding.ts";
import { requireScope } from "../admin/auth.ts";
import { mintExportLink } from "../admin/export-link.ts";
import { controlDeps, exportDeps, fleetDeps } from "../admin/request-deps.ts";
import type { ConsoleEnv } from "./guard.ts";

export function actionRoutes() {
  const routes = new Hono<ConsoleEnv>();
  const back = (slug: string) => `/tenants/${encodeURIComponent(slug)}`;
  routes.post("/tenants/:slug/suspend", requireScope("tenants:write"), async (c) => {
    const tenant = await suspendTenant(controlDeps(c), c.req.param("slug"));
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/tenants/:slug/resume", requireScope("tenants:write"), async (c) => {
    const tenant = await resumeTenant(controlDeps(c), c.req.param("slug"));
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/tenants/:slug/retry", requireScope("tenants:write"), async (c) => {
    const tenant = await retryOnboarding(controlDeps(c), c.req.param("slug"));
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/tenants/:slug/export", requireScope("exports:create"), async (c) => {
    const requested = await requestExport(exportDeps(c), c.req.param("slug"));
    return c.redirect(back(requested.tenant), 303);
  });
  routes.post("/tenants/:slug/delete", requireScope("tenants:delete"), async (c) => {
    const form = await c.req.parseBody();
    const confirm = typeof form.confirm === "string" ? form.confirm : undefined;
    await deleteTenant(controlDeps(c), c.req.param("slug"), confirm);
    return c.redirect("/tenants", 303);
  });
  // Domains: the admin API's domain routes' functions, with the same deps (they reach Cloudflare).
  routes.post("/tenants/:slug/domains", requireScope("tenants:write"), async (c) => {
    const form = await c.req.parseBody();
    const domain = typeof form.domain === "string" ? form.domain : "";
    const tenant = await addDomain(fleetDeps(c), c.req.param("slug"), domain);
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/tenants/:slug/domains/:domain/verify", requireScope("tenants:write"), async (c) => {
    const tenant = await verifyDomain(fleetDeps(c), c.req.param("slug"), c.req.param("domain"));
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/tenants/:slug/domains/:domain/remove", requireScope("tenants:write"), async (c) => {
    const tenant = await removeDomain(fleetDeps(c), c.req.param("slug"), c.req.param("domain"));
    return c.redirect(back(tenant.slug), 303);
  });
  routes.post("/exports/:id/download", requireScope("exports:create"), async (c) =>
    c.redirect((await mintExportLink(c, c.req.param("id"))).url, 303),
  );
  return routes;
}
