/**
 * The operator console on ADMIN_HOST (every path the admin API does not own): server-rendered
 * pages (hono/jsx) over the control-plane functions the admin API calls, one script and one
 * stylesheet from this origin, a strict CSP, sign-in (dev token or Cloudflare Access), CSRF
 * defence on every state-changing request, and `requireScope` on every page and action.
 */
import { Hono } from "hono";
import { requireScope } from "../admin/auth.ts";
import { installCommon } from "../http/common.ts";
import { configureEndpoint } from "../tenant-db/middleware.ts";
import { actionRoutes } from "./actions.ts";
import { assetRoutes } from "./assets.ts";
import { consoleError } from "./error-page.tsx";
import { fleetPage } from "./fleet.tsx";
import { type ConsoleEnv, consoleAuth, consoleHeaders, csrfToken, sameOrigin } from "./guard.ts";
import { rolloutRoutes } from "./rollout.tsx";
import { signInRoutes, signOutRoute } from "./sign-in.tsx";
import { tenantPage } from "./tenant.tsx";
import { tenantsPage } from "./tenants.tsx";

export function createConsoleApp() {
  const app = installCommon(new Hono<ConsoleEnv>());
  app.onError(consoleError);
  app.use(consoleHeaders());
  app.route("/", assetRoutes());
  app.use(sameOrigin());
  app.route("/", signInRoutes());
  app.use(consoleAuth(), csrfToken(), async function controlEndpoint(c, next) {
    configureEndpoint(c.env.NEON_FETCH_ENDPOINT);
    await next();
  });
  app.route("/", signOutRoute());
  app.get("/", requireScope("tenants:read"), fleetPage);
  app.get("/tenants", requireScope("tenants:read"), tenantsPage);
  app.get("/tenants/:slug", requireScope("tenants:read"), tenantPage);
  app.route("/", actionRoutes());
  app.route("/", rolloutRoutes());
  return app;
}
