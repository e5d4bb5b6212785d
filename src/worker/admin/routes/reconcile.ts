/**
 * KV reconcile on demand: the control database is the source of truth and KV the projection the
 * edge reads; this repairs the drift (the cron does the same every tick). It rewrites routing, so it
 * needs tenants:write. It starts a new pass and takes it as far as one invocation may; a larger
 * fleet's pass continues through the queue (`done: false` in the answer); `GET /v1/reconcile`
 * shows how far the latest pass got.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { hostnameOrphans } from "../../../control/domains/orphans.ts";
import { nextMessage, reconcile, reconcileProgress } from "../../../control/tenants/reconcile.ts";
import { AppError } from "../../../shared/errors.ts";
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
  progress: createRoute({
    method: "get",
    path: "/v1/reconcile",
    summary: "How far the latest reconcile pass got (404 when none ran)",
    middleware: requireScope("tenants:read"),
    responses: { 200: json(ReconcileReport, "Counts so far"), ...problems },
  }),
};

export function reconcileRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(reconcileRoutes.reconcile, async (c) => {
    const deps = controlDeps(c);
    const report = await reconcile(deps, { restart: true });
    if (!report) throw new AppError(409, "conflict", "Another reconcile pass started meanwhile.");
    if (!report.done) await c.env.FLEET_QUEUE.send(nextMessage(report), { contentType: "json" });
    const customHostnames = await hostnameOrphans(deps);
    return c.json({ ...report, ...(customHostnames ? { customHostnames } : {}) }, 200);
  });
  router.openapi(reconcileRoutes.progress, async (c) => {
    const report = await reconcileProgress(controlDeps(c));
    if (!report) throw new AppError(404, "not_found", "No reconcile pass has run yet.");
    return c.json(report, 200);
  });
  return router;
}
