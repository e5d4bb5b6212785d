/**
 * GET /exports/:id?expires=…&sig=… on a tenant's own host: streams a complete export from R2.
 * The HMAC covers the host's tenant id, the export id and the expiry, so a link is refused on
 * another tenant's host, when tampered with, and after it expires. Only a dump whose manifest exists
 * (written last) is served: a half-done export is never downloadable.
 */
import { createMiddleware } from "hono/factory";
import { exportKeys } from "../../control/export/service.ts";
import { verifyExportLink } from "../../shared/crypto/signed-link.ts";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";

export const downloadExport = createMiddleware<AppEnv>(async function downloadExportHandler(c) {
  const tenant = c.get("tenant");
  const exportId = c.req.param("id") ?? "";
  if (!c.env.EXPORT_SIGNING_KEY) throw new AppError(404, "not_found", "No such route.");
  const check = await verifyExportLink(
    c.env.EXPORT_SIGNING_KEY,
    tenant.id,
    exportId,
    c.req.query("expires"),
    c.req.query("sig"),
  );
  if (!check.ok) {
    c.get("log").log("warn", "export_link_refused", { reason: check.reason });
    if (check.reason === "expired")
      throw new AppError(410, "link_expired", "This download link has expired; ask for a new one.");
    throw new AppError(403, "link_invalid", "This download link is not valid for this host.");
  }
  const keys = exportKeys(tenant.id, exportId);
  const manifest = await c.env.EXPORTS.head(keys.manifest);
  const object = manifest ? await c.env.EXPORTS.get(keys.dump) : null;
  if (!object) throw new AppError(404, "not_found", "No such export.");
  c.get("log").log("info", "export_download", { exportId });
  return new Response(object.body, {
    headers: {
      "content-type": "application/gzip",
      "content-length": String(object.size),
      "content-disposition": `attachment; filename="${tenant.slug}-${exportId}.sql.gz"`,
      "cache-control": "private, no-store",
    },
  });
});
