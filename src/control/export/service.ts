/**
 * Tenant exports: the engine's SQL, gzip-compressed (CompressionStream) into an R2 multipart upload
 * with equal parts of PART_BYTES (R2 wants every part but the last the same size, ≥ 5 MiB), then a
 * manifest written last. The manifest is what makes an export complete: a reader (the download
 * route, the CLI) never trusts a dump without it, and a failed or interrupted upload is aborted, so
 * it never shows up as an object at all. A retry starts from scratch under the same keys.
 */
import { and, asc, desc, eq, gt, inArray } from "drizzle-orm";
import { constantTimeEqual } from "../../shared/crypto/equal.ts";
import { decryptSecret } from "../../shared/crypto/secrets.ts";
import { AppError } from "../../shared/errors.ts";
import { auditLog, type ExportState, exportsTable, tenants } from "../schema.ts";
import { type ControlDeps, migrationAad, ring } from "../service.ts";
import { type ExportStats, exportDatabase } from "./engine.ts";

export const PART_BYTES = 5 * 1024 * 1024;
export const DEFAULT_RETENTION = 7;
/** Input written to the compressor between two yields to the event loop (see uploadGzip). */
const YIELD_BYTES = 1024 * 1024;
/** A running export older than this is considered interrupted and may be retried. */
const STALE_RUNNING_MS = 30 * 60_000;

/** The R2 operations exports need (an R2Bucket satisfies it). */
export interface ExportBucket {
  createMultipartUpload(
    key: string,
    options?: { httpMetadata?: { contentType?: string; contentEncoding?: string } },
  ): Promise<{
    uploadPart(partNumber: number, value: ArrayBuffer | Uint8Array): Promise<{ partNumber: number; etag: string }>;
    complete(parts: { partNumber: number; etag: string }[]): Promise<unknown>;
    abort(): Promise<void>;
  }>;
  put(key: string, value: string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
  head(key: string): Promise<unknown | null>;
  delete(keys: string | string[]): Promise<void>;
}

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

const newExportId = () =>
  `exp_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;

/**
 * Streams `chunks` gzip-compressed into `key` as a multipart upload of equal PART_BYTES parts.
 * Memory: one part buffer plus what the compressor holds. Aborts the upload on any failure.
 *
 * Backpressure is explicit: CompressionStream's writable side accepts input whether or not its
 * output is read (in Node and in workerd alike), so piping the source through it read the whole
 * dump into memory ahead of the uploads. Instead no input is written while a part is being
 * uploaded, and every YIELD_BYTES of input the producer waits for the output to be consumed.
 */
export async function uploadGzip(
  bucket: ExportBucket,
  key: string,
  chunks: AsyncIterable<string>,
  options: { partBytes?: number; afterPart?: ((partNumber: number) => Promise<void> | void) | undefined } = {},
): Promise<{ bytes: number; parts: number }> {
  const partBytes = options.partBytes ?? PART_BYTES;
  const upload = await bucket.createMultipartUpload(key, { httpMetadata: { contentType: "application/gzip" } });
  const parts: { partNumber: number; etag: string }[] = [];
  let buffer = new Uint8Array(partBytes);
  let filled = 0;
  let total = 0;
  /** The part upload in flight, if any: the producer waits for it. */
  let uploading: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  const flush = async (size: number) => {
    const partNumber = parts.length + 1;
    parts.push(await upload.uploadPart(partNumber, buffer.slice(0, size)));
    await options.afterPart?.(partNumber);
    buffer = new Uint8Array(partBytes);
    filled = 0;
  };
  let sinkWrites = 0;
  const sink = new WritableStream<Uint8Array>({
    async write(value) {
      sinkWrites += 1;
      let offset = 0;
      while (offset < value.length) {
        const take = Math.min(partBytes - filled, value.length - offset);
        buffer.set(value.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        total += take;
        if (filled === partBytes) {
          uploading = flush(partBytes);
          try {
            await uploading;
          } catch (error) {
            failure ??= { error };
            throw error;
          } finally {
            uploading = undefined;
          }
        }
      }
    },
  });
  const compressor = new CompressionStream("gzip");
  const piped = compressor.readable.pipeTo(sink);
  // Rejects as soon as the output side fails, so the producer never waits on a dead compressor.
  const outputFailed = piped.then(
    () => new Promise<never>(() => undefined),
    (error: unknown) => {
      throw failure?.error ?? error;
    },
  );
  outputFailed.catch(() => undefined);
  const writer = compressor.writable.getWriter();
  const encoder = new TextEncoder();
  let sinceYield = 0;
  let writing: Promise<void> | undefined;
  try {
    for await (const text of chunks) {
      while (uploading) await Promise.race([uploading, outputFailed]);
      if (!text) continue;
      const bytes = encoder.encode(text);
      // One write in flight: Node compresses on another thread, so the next chunk is made meanwhile.
      if (writing) await Promise.race([writing, outputFailed]);
      writing = writer.write(bytes);
      writing.catch(() => undefined);
      // workerd hands the compressed output on in later tasks: every YIELD_BYTES of input, wait
      // until a task passes with the sink idle (output consumed, no upload in flight), so at most
      // ~YIELD_BYTES of input is compressed and unread at any time.
      sinceYield += bytes.length;
      if (sinceYield >= YIELD_BYTES) {
        sinceYield = 0;
        for (let seen = -1; seen !== sinkWrites || uploading; ) {
          seen = sinkWrites;
          if (uploading) await Promise.race([uploading, outputFailed]);
          await Promise.race([new Promise((resolve) => setTimeout(resolve, 0)), outputFailed]);
        }
      }
    }
    if (writing) await Promise.race([writing, outputFailed]);
    await Promise.race([writer.close(), outputFailed]);
    await piped;
    if (filled > 0 || parts.length === 0) await flush(filled);
    await upload.complete(parts);
    return { bytes: total, parts: parts.length };
  } catch (error) {
    await writer.abort(error).catch(() => undefined);
    await upload.abort().catch(() => undefined);
    throw failure?.error ?? error;
  }
}

async function audit(
  deps: ControlDeps,
  action: string,
  target: string,
  outcome: "ok" | "error",
  detail: Record<string, unknown>,
) {
  await deps.db
    .insert(auditLog)
    .values({ actor: deps.actor, action, target, outcome, detail, requestId: deps.requestId ?? null });
}

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

/** Queues a nightly export of every active tenant (cron); paged, sendBatch-sized. */
export async function scheduleNightlyExports(deps: ExportDeps): Promise<number> {
  let cursor = "";
  let queued = 0;
  for (;;) {
    const page = await deps.db
      .select({ id: tenants.id, slug: tenants.slug })
      .from(tenants)
      .where(and(eq(tenants.status, "active"), cursor ? gt(tenants.id, cursor) : undefined))
      .orderBy(asc(tenants.id))
      .limit(100);
    if (page.length === 0) break;
    const rows = page.map((t) => {
      const id = newExportId();
      return {
        id,
        tenantId: t.id,
        slug: t.slug,
        kind: "nightly" as const,
        status: "pending" as const,
        objectKey: exportKeys(t.id, id).dump,
        createdBy: deps.actor,
      };
    });
    await deps.db.insert(exportsTable).values(rows);
    await deps.sendExport(rows.map((r) => ({ kind: "export", exportId: r.id })));
    queued += rows.length;
    cursor = page.at(-1)?.id ?? "";
    if (page.length < 100) break;
  }
  return queued;
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
  String((error as { message?: string })?.message ?? error)
    .replace(/postgres(ql)?:\/\/\S+/gi, "[redacted]")
    .slice(0, 500);

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
  // The final export of a deleted tenant is never pruned by retention.
  const expired = complete.filter((e) => e.kind !== "final").slice(keep);
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

/** The final export offered by the delete flow: runs inline, before the database is dropped. */
export async function finalExport(deps: ExportDeps, slug: string): Promise<ExportView> {
  const [tenant] = await deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  if (!tenant) throw new AppError(404, "not_found", "No such tenant.");
  const id = newExportId();
  await deps.db.insert(exportsTable).values({
    id,
    tenantId: tenant.id,
    slug,
    kind: "final",
    status: "pending",
    objectKey: exportKeys(tenant.id, id).dump,
    createdBy: deps.actor,
  });
  const result = await runExport(deps, id);
  if (result.status !== "complete") {
    throw new AppError(502, "onboarding_failed", "The final export failed: the tenant was not deleted.", {
      extras: {},
    });
  }
  return result;
}

// ---- Signed download links (HMAC-SHA256, expiry), verified on the tenant's own host. ----

const encoder = new TextEncoder();

async function hmac(secret: string, message: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** What the signature covers: tenant, export and expiry, so a link works for one tenant's host only. */
const signedMessage = (tenantId: string, exportId: string, expires: number) =>
  `tenantry-export:v1:${tenantId}:${exportId}:${expires}`;

export async function signExportLink(
  secret: string,
  tenantId: string,
  exportId: string,
  expires: number,
): Promise<string> {
  return hex(await hmac(secret, signedMessage(tenantId, exportId, expires)));
}

export type LinkCheck = { ok: true } | { ok: false; reason: "malformed" | "expired" | "bad_signature" };

/** Constant-time check (shared/crypto/equal.ts). */
export async function verifyExportLink(
  secret: string,
  tenantId: string,
  exportId: string,
  expires: string | undefined,
  signature: string | undefined,
  now = Date.now(),
): Promise<LinkCheck> {
  if (
    !expires ||
    !signature ||
    !/^\d{1,13}$/.test(expires) ||
    !/^[0-9a-f]{64}$/.test(signature) ||
    !/^exp_[0-9a-f]{16}$/.test(exportId)
  ) {
    return { ok: false, reason: "malformed" };
  }
  const expected = await hmac(secret, signedMessage(tenantId, exportId, Number(expires)));
  const given = new Uint8Array(signature.match(/../g)?.map((h) => Number.parseInt(h, 16)) ?? []);
  if (!constantTimeEqual(expected, given)) return { ok: false, reason: "bad_signature" };
  if (Number(expires) * 1000 < now) return { ok: false, reason: "expired" };
  return { ok: true };
}
