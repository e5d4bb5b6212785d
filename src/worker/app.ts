/**
 * The Worker's Hono apps. Requests for ADMIN_HOST go to the operator console (its own paths) or the
 * admin API (control plane: `/v1/*`, `/openapi.json`, every other path); every other host goes through the tenant edge: resolution, auth, the tenant's own database,
 * the demo store routes. Both share request ids, structured logs and one RFC 9457 error handler.
 */
import { Hono as HonoApp } from "hono";
import { normalizeHost } from "../shared/host.ts";
import { createAdminApp } from "./admin/app.ts";
import { createConsoleApp } from "./console/app.ts";
import { tenantResolver } from "./edge/middleware.ts";
import { downloadExport } from "./exports/download.ts";
import { installCommon } from "./http/common.ts";
import { storeRoutes } from "./store/routes.ts";
import { tenantDatabase } from "./tenant-db/middleware.ts";
import type { AppEnv } from "./types.ts";

/**
 * The console's pages, actions and assets on ADMIN_HOST; every other path there (`/v1/*`,
 * `/openapi.json`, a tenant's `/api/*`, anything unknown) is the admin API's: JSON problems, never a
 * sign-in page for a machine client.
 */
const CONSOLE_PATH = /^\/(?:$|(?:assets|rollouts|runs|sign-in|sign-out|tenants|exports)(?:\/|$))/;
export const consolePath = (path: string): boolean => CONSOLE_PATH.test(path);

export function createApp() {
  const admin = createAdminApp();
  const operatorConsole = createConsoleApp();
  const tenant = installCommon(new HonoApp<AppEnv>());
  tenant.use(tenantResolver());
  tenant.get("/exports/:id", downloadExport);
  tenant.use("/api/*", tenantDatabase());
  tenant.route("/api", storeRoutes);

  const app = new HonoApp<AppEnv>();
  // The admin API exists on ADMIN_HOST only; on a tenant host its paths are just unknown routes.
  app.all("*", (c) => {
    const host = normalizeHost(new URL(c.req.url).hostname);
    const onAdminHost = host.ok && c.env.ADMIN_HOST && host.host === c.env.ADMIN_HOST;
    const path = new URL(c.req.url).pathname;
    const target = onAdminHost ? (consolePath(path) ? operatorConsole : admin) : tenant;
    return target.fetch(c.req.raw, c.env, c.executionCtx);
  });
  return app;
}
