/**
 * A tenant's database exports: request one (queued; a gzip SQL dump in R2 plus a manifest), list a
 * tenant's, show one, and mint a short-lived signed download link on the tenant's own host (the
 * link is audited: it hands the data out). Reading needs exports:read; queuing an export and minting
 * a link hand a whole database out, so they need exports:create.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { getExport, listExports, requestExport } from "../../../control/export/service.ts";
import { auditLog } from "../../../control/schema.ts";
import { getTenant } from "../../../control/tenants/lifecycle.ts";
import { signExportLink } from "../../../shared/crypto/signed-link.ts";
import { AppError } from "../../../shared/errors.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
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
  router.openapi(exportRoutes.link, async (c) => {
    const found = await getExport(controlDeps(c), c.req.valid("param").id);
    if (found.status !== "complete") throw new AppError(409, "invalid_state", `The export is ${found.status}.`);
    if (!c.env.EXPORT_SIGNING_KEY)
      throw new AppError(503, "db_unavailable", "Export links are not configured (EXPORT_SIGNING_KEY).");
    const tenant = await getTenant(controlDeps(c), found.tenant);
    const host = tenant.domains[0] ?? `${tenant.slug}.${c.env.PLATFORM_DOMAIN}`;
    const ttl = Math.max(30, Math.min(86_400, Number(c.env.EXPORT_LINK_TTL_SECONDS) || 900));
    const expires = Math.floor(Date.now() / 1000) + ttl;
    const signature = await signExportLink(c.env.EXPORT_SIGNING_KEY, found.tenantId, found.id, expires);
    // Same scheme and port as this admin request: right in dev (http, :8787) and behind Cloudflare (https).
    const origin = new URL(c.req.url);
    const url = `${origin.protocol}//${host}${origin.port ? `:${origin.port}` : ""}/exports/${found.id}?expires=${expires}&sig=${signature}`;
    await controlDeps(c)
      .db.insert(auditLog)
      .values({
        actor: c.get("adminSub"),
        action: "export.link",
        target: found.tenant,
        outcome: "ok",
        detail: { exportId: found.id, expires },
        requestId: c.get("requestId"),
      });
    return c.json({ url, expiresAt: new Date(expires * 1000).toISOString() }, 200);
  });
  return router;
}
