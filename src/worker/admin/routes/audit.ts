/**
 * The audit log, newest first: every admin action, who did it and how it ended. Reading it needs
 * tenants:read.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { auditEntries } from "../../../control/tenants/audit.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps } from "../request-deps.ts";
import { AuditPage, AuditQuery, json, problems } from "../schemas.ts";

export const auditRoutes = {
  list: createRoute({
    method: "get",
    path: "/v1/audit",
    summary: "Recent admin actions",
    middleware: requireScope("tenants:read"),
    request: { query: AuditQuery },
    responses: { 200: json(AuditPage, "Audit entries, newest first"), ...problems },
  }),
};

export function auditRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(auditRoutes.list, async (c) => {
    const query = c.req.valid("query");
    return c.json({ items: await auditEntries(controlDeps(c), query) }, 200);
  });
  return router;
}
