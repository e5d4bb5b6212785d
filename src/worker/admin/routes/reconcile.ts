/**
 * KV reconcile on demand: the control database is the source of truth and KV the projection the
 * edge reads; this repairs the drift (the cron does the same every tick). It rewrites routing, so it
 * needs tenants:write. With Cloudflare configured it also reports custom hostnames without a domain
 * and domains without a custom hostname (domains/orphans.ts).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { hostnameOrphans } from "../../../control/domains/orphans.ts";
import { reconcile } from "../../../control/tenants/reconcile.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps } from "../request-deps.ts";
import { json, problems, ReconcileReport } from "../schemas.ts";

export const reconcileRoutes = {
  reconcile: createRoute({
    method: "post",
    path: "/v1/reconcile",
    summary: "Repair drift between the control database and KV",
    middleware: requireScope("tenants:write"),
    responses: { 200: json(ReconcileReport, "Counts"), ...problems },
  }),
};

export function reconcileRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(reconcileRoutes.reconcile, async (c) => {
    const deps = controlDeps(c);
    const customHostnames = await hostnameOrphans(deps);
    return c.json({ ...(await reconcile(deps)), ...(customHostnames ? { customHostnames } : {}) }, 200);
  });
  return router;
}
