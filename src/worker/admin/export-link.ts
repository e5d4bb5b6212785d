/**
 * Mints a short-lived signed download link for a complete export, on the tenant's own host, and
 * audits it (the link hands the data out). The admin API's `POST /v1/exports/{id}/link` and the
 * console's download button both call this, so there is one rule for who gets which link.
 */
import type { Context } from "hono";
import { getExport } from "../../control/export/service.ts";
import { auditLog } from "../../control/schema.ts";
import { getTenant } from "../../control/tenants/lifecycle.ts";
import { signExportLink } from "../../shared/crypto/signed-link.ts";
import { AppError } from "../../shared/errors.ts";
import type { AdminEnv } from "./auth.ts";
import { controlDeps } from "./request-deps.ts";

export async function mintExportLink<E extends AdminEnv>(
  c: Context<E>,
  exportId: string,
): Promise<{ url: string; expiresAt: string }> {
  const found = await getExport(controlDeps(c), exportId);
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
  return { url, expiresAt: new Date(expires * 1000).toISOString() };
}
