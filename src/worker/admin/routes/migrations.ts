/**
 * Schema migrations across the fleet: the fleet's versions and latest run, and runs (rollouts,
 * rollbacks, dry runs) started, followed, resumed and cancelled. Watching needs tenants:read;
 * starting, resuming or cancelling a run needs fleet:run.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { cancelRun, fleetStatus, resumeRun, runProgress, startRun } from "../../../control/fleet/runs.ts";
import { migrations } from "../../../generated/migrations.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps, fleetDeps } from "../request-deps.ts";
import { FleetStatus, json, problems, RunParam, RunProgress, StartRunBody } from "../schemas.ts";

export const migrationRoutes = {
  status: createRoute({
    method: "get",
    path: "/v1/migrations/status",
    summary: "Fleet schema versions, tenants behind, the latest run",
    middleware: requireScope("tenants:read"),
    responses: { 200: json(FleetStatus, "Fleet status"), ...problems },
  }),
  start: createRoute({
    method: "post",
    path: "/v1/migrations/runs",
    summary: "Start a rollout (or a rollback, or a dry run) across every active tenant",
    middleware: requireScope("fleet:run"),
    request: { body: { content: { "application/json": { schema: StartRunBody } } } },
    responses: { 202: json(RunProgress, "The run, started"), ...problems },
  }),
  show: createRoute({
    method: "get",
    path: "/v1/migrations/runs/{id}",
    summary: "A run's progress",
    middleware: requireScope("tenants:read"),
    request: { params: RunParam },
    responses: { 200: json(RunProgress, "Progress"), ...problems },
  }),
  resume: createRoute({
    method: "post",
    path: "/v1/migrations/runs/{id}/resume",
    summary: "Re-queue what is pending or failed and continue",
    middleware: requireScope("fleet:run"),
    request: { params: RunParam },
    responses: { 200: json(RunProgress, "Progress"), ...problems },
  }),
  cancel: createRoute({
    method: "post",
    path: "/v1/migrations/runs/{id}/cancel",
    summary: "Stop a run: tenants not started are skipped",
    middleware: requireScope("fleet:run"),
    request: { params: RunParam },
    responses: { 200: json(RunProgress, "Progress"), ...problems },
  }),
};

export function migrationsRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(migrationRoutes.status, async (c) => c.json(await fleetStatus(controlDeps(c), migrations), 200));
  router.openapi(migrationRoutes.start, async (c) => c.json(await startRun(fleetDeps(c), c.req.valid("json")), 202));
  router.openapi(migrationRoutes.show, async (c) =>
    c.json(await runProgress(controlDeps(c), c.req.valid("param").id), 200),
  );
  router.openapi(migrationRoutes.resume, async (c) =>
    c.json(await resumeRun(fleetDeps(c), c.req.valid("param").id), 200),
  );
  router.openapi(migrationRoutes.cancel, async (c) =>
    c.json(await cancelRun(fleetDeps(c), c.req.valid("param").id), 200),
  );
  return router;
}
