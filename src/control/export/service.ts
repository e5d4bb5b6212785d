/**
 * Tenant export jobs: an export is requested (on demand, nightly by cron, or inline as the final
 * export before a delete), recorded in the control database and queued; the consumer runs it
 * (engine.ts into upload.ts), then writes the manifest last and prunes old exports by retention.
 * The manifest is what makes an export complete: a reader (the download route, the CLI) never
 * trusts a dump without it. A retry starts from scratch under the same keys.
 */
import { and, desc, eq, inArray } from "drizzle-orm";
import { decryptSecret } from "../../shared/crypto/secrets.ts";
import { AppError } from "../../shared/errors.ts";
import { redactSecrets } from "../../shared/redact.ts";
import { type ExportState, exportsTable, tenants } from "../schema.ts";
import { audit } from "../tenants/audit.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import { migrationAad, ring } from "../tenants/secrets.ts";
import { type ExportStats, exportDatabase } from "./engine.ts";
import { type ExportBucket, uploadGzip } from "./upload.ts";

export const DEFAULT_RETENTION = 7;
/** A running export older than this is considered interrupted and may be retried. */
const STALE_RUNNING_MS = 30 * 60_000;

export interface ExportMessage {
  readonly kind: "export";
  readonly exportId: string;
}

export interface ExportDeps extends ControlDeps {
  readonly bucket: ExportBucket;
  readonly sendExport: (messages: readonly ExportMessage[]) => Promise<void>;
  readonly retention?: number | undefined;
  /** Fault injection for tests: called after each uploaded part. */
  readonly afterPart?: ((partNumber: number) => Promise<void> | void) | undefined;
}

export interface Manifest {
  readonly format: "tenantry-export/1";
  readonly exportId: string;
  readonly tenant: { readonly id: string; readonly slug: string };
  readonly schemaVersion: string | null;
  readonly object: {
    readonly key: string;
    readonly bytes: number;
    readonly parts: number;
    readonly contentEncoding: "gzip";
  };
  readonly sqlBytes: number;
  readonly rows: number;
  readonly tables: ExportStats["tables"];
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly ms: number;
}

export const exportKeys = (tenantId: string, exportId: string) => ({
  dump: `exports/${tenantId}/${exportId}/dump.sql.gz`,
  manifest: `exports/${tenantId}/${exportId}/manifest.json`,
});

export const newExportId = () =>
  `exp_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;

/** Records an export and queues it; the consumer does the work. */
export async function requestExport(
  deps: ExportDeps,
  slug: string,
  kind: "on_demand" | "nightly" = "on_demand",
): Promise<ExportView> {
  const [tenant] = await deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  if (!tenant) throw new AppError(404, "not_found", "No such tenant.");
  if (tenant.status !== "active" && tenant.status !== "suspended")
    throw new AppError(409, "invalid_state", `A ${tenant.status} tenant cannot be exported.`);
  const id = newExportId();
  const [row] = await deps.db
    .insert(exportsTable)
    .values({
      id,
      tenantId: tenant.id,
      slug: tenant.slug,
      kind,
      status: "pending",
      objectKey: exportKeys(tenant.id, id).dump,
      createdBy: deps.actor,
    })
    .returning();
  await deps.sendExport([{ kind: "export", exportId: id }]);
  await audit(deps, "export.request", slug, "ok", { exportId: id, kind });
  return exportView(row as ExportRow);
}

type ExportRow = typeof exportsTable.$inferSelect;

export interface ExportView {
  readonly id: string;
  readonly tenant: string;
  readonly kind: string;
  readonly status: ExportState;
  readonly bytes: number | null;
  readonly rows: number | null;
  readonly error: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly tables: number | null;
}

function exportView(row: ExportRow): ExportView {
  const tables = (row.manifest as { tables?: unknown[] } | null)?.tables;
  return {
    id: row.id,
    tenant: row.slug,
    kind: row.kind,
    status: row.status,
    bytes: row.bytes ?? null,
    rows: row.rows ?? null,
    error: row.error,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
    tables: Array.isArray(tables) ? tables.length : null,
  };
}

export async function getExport(
  deps: ControlDeps,
  id: string,
): Promise<ExportView & { tenantId: string; manifest: Record<string, unknown> | null }> {
  const [row] = await deps.db.select().from(exportsTable).where(eq(exportsTable.id, id));
  if (!row) throw new AppError(404, "not_found", "No such export.");
  return { ...exportView(row), tenantId: row.tenantId, manifest: row.manifest ?? null };
}

export async function listExports(deps: ControlDeps, slug: string, limit = 20): Promise<ExportView[]> {
  const rows = await deps.db
    .select()
    .from(exportsTable)
    .where(eq(exportsTable.slug, slug))
    .orderBy(desc(exportsTable.createdAt))
    .limit(limit);
  return rows.map(exportView);
}

const safeError = (error: unknown) =>
  redactSecrets(String((error as { message?: string })?.message ?? error)).slice(0, 500);

/**
 * Runs one export (queue consumer, or inline for the final export before a delete). Idempotent:
 * a complete export is left alone; anything else starts from scratch under the same keys.
 */
export async function runExport(deps: ExportDeps, exportId: string): Promise<ExportView> {
  const [row] = await deps.db.select().from(exportsTable).where(eq(exportsTable.id, exportId));
  if (!row) throw new AppError(404, "not_found", "No such export.");
  if (row.status === "complete" || row.status === "expired") return exportView(row);
  if (row.status === "running" && row.startedAt && Date.now() - Date.parse(row.startedAt) < STALE_RUNNING_MS) {
    // Another consumer holds it (a duplicate delivery): leave it.
    return exportView(row);
  }
  const claimed = await deps.db
    .update(exportsTable)
    .set({ status: "running", startedAt: new Date().toISOString(), attempts: row.attempts + 1, error: null })
    .where(and(eq(exportsTable.id, exportId), eq(exportsTable.attempts, row.attempts)))
    .returning();
  if (claimed.length === 0) return exportView(row);
  const [tenant] = await deps.db.select().from(tenants).where(eq(tenants.id, row.tenantId));
  const keys = exportKeys(row.tenantId, exportId);
  try {
    if (!tenant?.migrationSecret) throw new Error(`tenant is ${tenant?.status ?? "gone"}`);
    const decrypted = await decryptSecret(ring(deps.encryptionKeys), tenant.migrationSecret, migrationAad(tenant.id));
    if (!decrypted.ok) throw new Error("the tenant's connection could not be decrypted");
    // A leftover manifest from an earlier attempt must not vouch for the new dump.
    await deps.bucket.delete(keys.manifest);
    const exporter = exportDatabase(decrypted.plaintext);
    const uploaded = await uploadGzip(deps.bucket, keys.dump, exporter.chunks, { afterPart: deps.afterPart });
    const stats = exporter.stats();
    const manifest: Manifest = {
      format: "tenantry-export/1",
      exportId,
      tenant: { id: tenant.id, slug: tenant.slug },
      schemaVersion: stats.schemaVersion,
      object: { key: keys.dump, bytes: uploaded.bytes, parts: uploaded.parts, contentEncoding: "gzip" },
      sqlBytes: stats.bytes,
      rows: stats.rows,
      tables: stats.tables,
      startedAt: stats.startedAt,
      finishedAt: stats.finishedAt,
      ms: stats.ms,
    };
    // Written last: its presence is what "complete" means.
    await deps.bucket.put(keys.manifest, JSON.stringify(manifest, null, 2), {
      httpMetadata: { contentType: "application/json" },
    });
    const [done] = await deps.db
      .update(exportsTable)
      .set({
        status: "complete",
        manifest: manifest as unknown as Record<string, unknown>,
        bytes: uploaded.bytes,
        rows: stats.rows,
        finishedAt: new Date().toISOString(),
      })
      .where(eq(exportsTable.id, exportId))
      .returning();
    await audit(deps, "export.complete", row.slug, "ok", { exportId, bytes: uploaded.bytes, rows: stats.rows });
    await applyRetention(deps, row.tenantId);
    return exportView(done as ExportRow);
  } catch (error) {
    const [failed] = await deps.db
      .update(exportsTable)
      .set({ status: "failed", error: safeError(error), finishedAt: new Date().toISOString() })
      .where(eq(exportsTable.id, exportId))
      .returning();
    await audit(deps, "export.complete", row.slug, "error", { exportId }).catch(() => undefined);
    return exportView(failed as ExportRow);
  }
}

/** Keeps the newest `retention` complete exports of a tenant; older ones are deleted from R2. */
export async function applyRetention(deps: ExportDeps, tenantId: string): Promise<number> {
  const keep = deps.retention ?? DEFAULT_RETENTION;
  const complete = await deps.db
    .select({ id: exportsTable.id, kind: exportsTable.kind })
    .from(exportsTable)
    .where(and(eq(exportsTable.tenantId, tenantId), eq(exportsTable.status, "complete")))
    .orderBy(desc(exportsTable.createdAt), desc(exportsTable.id));
  // The final export of a deleted tenant, and the copy a rollback took of what it dropped, are
  // never pruned by retention.
  const expired = complete.filter((e) => e.kind !== "final" && e.kind !== "pre_rollback").slice(keep);
  for (const e of expired) {
    const keys = exportKeys(tenantId, e.id);
    await deps.bucket.delete([keys.dump, keys.manifest]);
  }
  if (expired.length > 0) {
    await deps.db
      .update(exportsTable)
      .set({ status: "expired" })
      .where(
        inArray(
          exportsTable.id,
          expired.map((e) => e.id),
        ),
      );
  }
  return expired.length;
}

/** An export run inline (not queued): the final one before a delete, or one before a rollback drops data. */
export async function inlineExport(
  deps: ExportDeps,
  tenant: { readonly id: string; readonly slug: string },
  kind: "final" | "pre_rollback",
): Promise<ExportView> {
  const id = newExportId();
  await deps.db.insert(exportsTable).values({
    id,
    tenantId: tenant.id,
    slug: tenant.slug,
    kind,
    status: "pending",
    objectKey: exportKeys(tenant.id, id).dump,
    createdBy: deps.actor,
  });
  return runExport(deps, id);
}

/** The final export offered by the delete flow: runs inline, before the database is dropped. */
export async function finalExport(deps: ExportDeps, slug: string): Promise<ExportView> {
  const [tenant] = await deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  if (!tenant) throw new AppError(404, "not_found", "No such tenant.");
  const result = await inlineExport(deps, tenant, "final");
  if (result.status !== "complete") {
    // The export's own failure (its reason is on the export, GET /v1/exports/{id}), not onboarding's.
    throw new AppError(502, "export_failed", `The final export ${result.id} failed: the tenant was not deleted.`);
  }
  return result;
}
