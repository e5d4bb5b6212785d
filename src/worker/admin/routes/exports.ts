/**
 * A tenant's database exports: request one (queued; a gzip SQL dump in R2 plus a manifest), list a
 * tenant's, show one, and mint a short-lived signed download link on the tenant's own host (the
 * link is audited: it hands the data out). Reading needs exports:read; queuing an export and minting
 * a link hand a whole database out, so they need exports:create.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { getExport, listExports, requestExport } from "../../../control/export/service.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { mintExportLink } from "../export-link.ts";
import { controlDeps, exportDeps } from "../request-deps.ts";
import { Export, ExportDetail, ExportLink, ExportList, ExportParam, json, problems, SlugParam } from "../schemas.ts";

export const exportRoutes = {
  request: createRoute({
    method: "post",
    path: "/v1/tenants/{slug}/exports",
    summary: "Export a tenant's database (queued): a gzip SQL dump in R2 plus a manifest",
    middleware: requireScope("exports:create"),
    request: { params: SlugParam },
    responses: { 202: json(Export, "The export, queued"), ...problems },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/tenants/{slug}/exports",
    summary: "A tenant's exports, newest first",
    middleware: requireScope("exports:read"),
    request: { params: SlugParam },
    responses: { 200: json(ExportList, "Exports"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/exports/{id}",
    summary: "An export's status and manifest",
    middleware: requireScope("exports:read"),
    request: { params: ExportParam },
    responses: { 200: json(ExportDetail, "The export"), ...problems },
  }),
  link: createRoute({
    method: "post",
    path: "/v1/exports/{id}/link",
    summary: "A short-lived signed download URL on the tenant's own host",
    middleware: requireScope("exports:create"),
    request: { params: ExportParam },
    responses: { 200: json(ExportLink, "The link"), ...problems },
  }),
};

export function exportsRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(exportRoutes.request, async (c) =>
    c.json(await requestExport(exportDeps(c), c.req.valid("param").slug), 202),
  );
  router.openapi(exportRoutes.list, async (c) =>
    c.json({ items: await listExports(controlDeps(c), c.req.valid("param").slug) }, 200),
  );
  router.openapi(exportRoutes.show, async (c) => {
    const { tenantId: _tenantId, ...view } = await getExport(controlDeps(c), c.req.valid("param").id);
    return c.json(view, 200);
  });
  router.openapi(exportRoutes.link, async (c) => c.json(await mintExportLink(c, c.req.valid("param").id), 200));
  return router;
}
