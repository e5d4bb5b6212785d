/**
 * Edge middleware: the tenant comes from the request URL's hostname only (never a client header:
 * OWASP WSTG-INPV-17), is looked up in the isolate cache or KV, and gated by its status.
 */
import { createMiddleware } from "hono/factory";
import { setMetric } from "hono/timing";
import { AppError } from "../../shared/errors.ts";
import { normalizeHost } from "../../shared/host.ts";
import type { AppEnv } from "../types.ts";
import { resolveTenant } from "./resolve.ts";

export function tenantResolver() {
  return createMiddleware<AppEnv>(async function resolveTenantMiddleware(c, next) {
    const started = performance.now();
    const parsed = normalizeHost(new URL(c.req.url).hostname);
    if (!parsed.ok) {
      c.get("log").log("info", "host_rejected", { reason: parsed.reason });
      throw new AppError(400, "invalid_host", "The request host is not a valid tenant host name.");
    }
    const { tenant, source } = await resolveTenant(c.env.TENANTS, parsed.host, c.env.PLATFORM_DOMAIN);
    setMetric(c, "resolve", performance.now() - started, source);
    if (!tenant || tenant.status === "deleted")
      throw new AppError(404, "tenant_not_found", "No tenant serves this host.");
    c.set("log", c.get("log").with({ tenantId: tenant.id }));
    if (tenant.status === "suspended") throw new AppError(403, "tenant_suspended", "This tenant is suspended.");
    if (tenant.status === "migrating") {
      throw new AppError(503, "tenant_migrating", "This tenant is being migrated; retry shortly.", {
        headers: { "retry-after": "30" },
      });
    }
    c.set("tenant", tenant);
    await next();
  });
}
