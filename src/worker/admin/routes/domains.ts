/**
 * A tenant's domains: map one (it then resolves to the tenant at the edge) and unmap one. Both
 * change routing, so both need tenants:write.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { addDomain, removeDomain } from "../../../control/tenants/domains.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps } from "../request-deps.ts";
import { DomainBody, DomainParam, json, problems, SlugParam, Tenant } from "../schemas.ts";

export const domainRoutes = {
  add: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/domains",
    summary: "Map a domain to a tenant",
    middleware: requireScope("tenants:write"),
    request: {
      params: SlugParam,
      body: { required: true, content: { "application/json": { schema: DomainBody } } },
    },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/tenants/{slug}/domains/{domain}",
    summary: "Unmap a domain",
    middleware: requireScope("tenants:write"),
    request: { params: DomainParam },
    responses: { 200: json(Tenant, "The tenant"), ...problems },
  }),
};

export function domainsRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(domainRoutes.add, async (c) =>
    c.json(await addDomain(controlDeps(c), c.req.valid("param").slug, c.req.valid("json").domain), 200),
  );
  router.openapi(domainRoutes.remove, async (c) => {
    const { slug, domain } = c.req.valid("param");
    return c.json(await removeDomain(controlDeps(c), slug, domain), 200);
  });
  return router;
}
