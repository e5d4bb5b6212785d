/**
 * A tenant's domains: map one (a Cloudflare custom hostname when configured, served once active),
 * unmap one, re-trigger its validation, and their status (settling ones checked against Cloudflare
 * first). Mapping, unmapping and re-validating change routing, so they need tenants:write.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { domainStatus } from "../../../control/domains/status.ts";
import { addDomain, removeDomain, verifyDomain } from "../../../control/tenants/domains.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { fleetDeps } from "../request-deps.ts";
import { DomainBody, DomainList, DomainParam, domainProblems, json, SlugParam, Tenant } from "../schemas.ts";

export const domainRoutes = {
  add: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/domains",
    summary: "Map a domain to a tenant (creates its custom hostname; see domainDetails for the DNS records)",
    middleware: requireScope("tenants:write"),
    request: {
      params: SlugParam,
      body: { required: true, content: { "application/json": { schema: DomainBody } } },
    },
    responses: { 200: json(Tenant, "The tenant"), ...domainProblems },
  }),
  status: createRoute({
    method: "get",
    path: "/v1/tenants/{slug}/domains",
    summary: "A tenant's domains and their status",
    middleware: requireScope("tenants:read"),
    request: { params: SlugParam },
    responses: { 200: json(DomainList, "The domains"), ...domainProblems },
  }),
  verify: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/domains/{domain}/verify",
    summary: "Re-trigger a domain's validation",
    middleware: requireScope("tenants:write"),
    request: { params: DomainParam },
    responses: { 200: json(Tenant, "The tenant"), ...domainProblems },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/tenants/{slug}/domains/{domain}",
    summary: "Unmap a domain (and delete its custom hostname)",
    middleware: requireScope("tenants:write"),
    request: { params: DomainParam },
    responses: { 200: json(Tenant, "The tenant"), ...domainProblems },
  }),
};

export function domainsRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(domainRoutes.add, async (c) =>
    c.json(await addDomain(fleetDeps(c), c.req.valid("param").slug, c.req.valid("json").domain), 200),
  );
  router.openapi(domainRoutes.status, async (c) =>
    c.json(await domainStatus(fleetDeps(c), c.req.valid("param").slug), 200),
  );
  router.openapi(domainRoutes.verify, async (c) => {
    const { slug, domain } = c.req.valid("param");
    return c.json(await verifyDomain(fleetDeps(c), slug, domain), 200);
  });
  router.openapi(domainRoutes.remove, async (c) => {
    const { slug, domain } = c.req.valid("param");
    return c.json(await removeDomain(fleetDeps(c), slug, domain), 200);
  });
  return router;
}
