/**
 * Streaming an export into R2, against an in-memory bucket that behaves like R2 (a multipart upload
 * is invisible until `complete`, gone after `abort`; every part but the last must be the same size
 * and at least the minimum) and records every operation in order:
 *
 * - uploadGzip: equal parts, the object is the gzip of exactly the text streamed; the source is read
 *   no faster than parts are uploaded (CompressionStream alone would buffer the whole dump); a
 *   failing source or a failing part aborts the upload and leaves nothing visible.
 * - runExport on a real tenant (control database + local provisioner on the test Postgres): the
 *   manifest is written only after the multipart upload completed; an export interrupted on part 2
 *   is aborted, leaves no dump and no manifest (a stale manifest from an earlier attempt is removed
 *   first) and is marked failed; a retry completes, with 5 MiB parts; the stored .sql.gz itself
 *   restores with `gunzip -c | psql -v ON_ERROR_STOP=1` and matches the manifest's checksums.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { neon, neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import {
  type ExportDeps,
  exportKeys,
  getExport,
  type Manifest,
  runExport,
} from "../../../src/control/export/service.ts";
import { type ExportBucket, PART_BYTES, uploadGzip } from "../../../src/control/export/upload.ts";
import { exportsTable, tenants } from "../../../src/control/schema.ts";
import { createTenant } from "../../../src/control/tenants/create.ts";
import { tenantConnection } from "../../../src/control/tenants/secrets.ts";
import { ensureControlDatabase, memoryKv, seedDeps } from "../../../src/dev/seed.ts";
import { generateKey } from "../../../src/shared/crypto/secrets.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import {
  createRestoreTarget,
  dropTestDatabase,
  gatewayUrl,
  postgresUrl,
  superuser,
  type TestDatabase,
} from "../support.ts";

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface Upload {
  readonly key: string;
  readonly parts: Map<number, Uint8Array>;
  state: "open" | "complete" | "aborted";
}

/** An R2 stand-in: visible objects, uploads in flight, and a log of every operation in order. */
class FakeBucket implements ExportBucket {
  readonly ops: string[] = [];
  readonly objects = new Map<string, Uint8Array>();
  readonly uploads: Upload[] = [];

  constructor(private readonly minPartBytes = 5 * MiB) {}

  async createMultipartUpload(key: string) {
    const upload: Upload = { key, parts: new Map(), state: "open" };
    this.uploads.push(upload);
    this.ops.push(`create ${key}`);
    return {
      uploadPart: async (partNumber: number, value: ArrayBuffer | Uint8Array) => {
        if (upload.state !== "open") throw new Error(`upload is ${upload.state}`);
        // Copied: the caller may reuse its buffer.
        upload.parts.set(
          partNumber,
          new Uint8Array(value instanceof Uint8Array ? value : new Uint8Array(value)).slice(),
        );
        this.ops.push(`part ${partNumber} ${key}`);
        return { partNumber, etag: `etag-${partNumber}` };
      },
      complete: async (parts: { partNumber: number; etag: string }[]) => {
        if (upload.state !== "open") throw new Error(`upload is ${upload.state}`);
        const sizes = parts.map((p, i) => {
          const body = upload.parts.get(p.partNumber);
          if (p.partNumber !== i + 1 || p.etag !== `etag-${p.partNumber}` || !body) throw new Error("bad part list");
          return body.length;
        });
        // R2's rule: every part but the last has the same size, at least the minimum.
        const first = sizes[0] ?? 0;
        if (sizes.slice(0, -1).some((size) => size !== first || size < this.minPartBytes))
          throw new Error(`unequal or too small parts: ${sizes.join(", ")}`);
        if ((sizes.at(-1) ?? 0) > first) throw new Error("the last part is larger than the others");
        const object = new Uint8Array(sizes.reduce((total, size) => total + size, 0));
        let offset = 0;
        for (const p of parts) {
          const body = upload.parts.get(p.partNumber) as Uint8Array;
          object.set(body, offset);
          offset += body.length;
        }
        upload.state = "complete";
        this.objects.set(key, object);
        this.ops.push(`complete ${key}`);
        return {};
      },
      abort: async () => {
        upload.state = "aborted";
        this.ops.push(`abort ${key}`);
      },
    };
  }

  async put(key: string, value: string) {
    this.objects.set(key, new TextEncoder().encode(value));
    this.ops.push(`put ${key}`);
    return {};
  }

  async head(key: string) {
    const object = this.objects.get(key);
    return object ? { key, size: object.length } : null;
  }

  async delete(keys: string | string[]) {
    for (const key of Array.isArray(keys) ? keys : [keys]) {
      this.objects.delete(key);
      this.ops.push(`delete ${key}`);
    }
  }

  partSizes(key: string): number[] {
    const upload = this.uploads.filter((u) => u.key === key).at(-1);
    return upload ? [...upload.parts.entries()].sort(([a], [b]) => a - b).map(([, body]) => body.length) : [];
  }

  text(key: string): string {
    const object = this.objects.get(key);
    if (!object) throw new Error(`no object ${key}`);
    return new TextDecoder().decode(object);
  }
}

/** Poorly compressible text (hex), so gzip output is large enough for several parts. */
async function* hexChunks(total: number, chunk = 64 * 1024, log?: string[]): AsyncGenerator<string> {
  try {
    for (let sent = 0; sent < total; sent += chunk) yield `${randomBytes(chunk / 2).toString("hex")}\n`;
  } finally {
    log?.push("source closed");
  }
}

async function collect(chunks: AsyncIterable<string>): Promise<{ text: string; chunks: string[] }> {
  const seen: string[] = [];
  for await (const c of chunks) seen.push(c);
  return { text: seen.join(""), chunks: seen };
}

describe("uploadGzip", () => {
  it("uses 5 MiB parts by default (R2's minimum part size)", () => {
    expect(PART_BYTES).toBe(5 * MiB);
  });

  it("uploads equal parts in order, then completes; the object is the gzip of exactly the text", async () => {
    const bucket = new FakeBucket(64 * 1024);
    const { chunks } = await collect(hexChunks(2 * MiB));
    async function* replay() {
      yield* chunks;
    }
    const result = await uploadGzip(bucket, "k/dump.sql.gz", replay(), { partBytes: 64 * 1024 });
    const sizes = bucket.partSizes("k/dump.sql.gz");
    expect(sizes.length).toBeGreaterThan(3);
    expect(result.parts).toBe(sizes.length);
    expect(sizes.slice(0, -1).every((size) => size === 64 * 1024)).toBe(true);
    expect(sizes.at(-1)).toBeGreaterThan(0);
    expect(sizes.at(-1)).toBeLessThanOrEqual(64 * 1024);
    expect(bucket.ops).toEqual([
      "create k/dump.sql.gz",
      ...sizes.map((_, i) => `part ${i + 1} k/dump.sql.gz`),
      "complete k/dump.sql.gz",
    ]);
    const object = bucket.objects.get("k/dump.sql.gz") as Uint8Array;
    expect(result.bytes).toBe(object.length);
    expect(gunzipSync(object).toString("utf8")).toBe(chunks.join(""));
  });

  it("reads the source no faster than parts are uploaded (bounded memory, whatever the dump's size)", async () => {
    const partBytes = 64 * 1024;
    const bucket = new FakeBucket(partBytes);
    let pulled = 0;
    const pulledAtPart: number[] = [];
    async function* counted() {
      for await (const chunk of hexChunks(16 * MiB)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const slow: ExportBucket = {
      ...bucket,
      put: (key, value) => bucket.put(key, value),
      head: (key) => bucket.head(key),
      delete: (keys) => bucket.delete(keys),
      createMultipartUpload: async (key) => {
        const upload = await bucket.createMultipartUpload(key);
        return {
          ...upload,
          uploadPart: async (n: number, value: ArrayBuffer | Uint8Array) => {
            pulledAtPart.push(pulled);
            // A part takes a while to reach R2: the producer must wait, not pile up gzip output.
            await new Promise((resolve) => setTimeout(resolve, 2));
            return upload.uploadPart(n, value);
          },
        };
      },
    };
    const result = await uploadGzip(slow, "k/dump.sql.gz", counted(), { partBytes });
    const ratio = result.bytes / pulled;
    // Gzip bytes produced from what had been read, beyond what had been handed to R2.
    const ahead = pulledAtPart.map((input, i) => input * ratio - i * partBytes);
    // Before the fix: the whole output (~9 MB here) was produced before the first part went out.
    expect(Math.max(...ahead)).toBeLessThan(1 * MiB);
  }, 60_000);

  it("a small dump is one (small) part", async () => {
    const bucket = new FakeBucket();
    async function* tiny() {
      yield "SELECT 1;\n";
    }
    const result = await uploadGzip(bucket, "k/tiny.sql.gz", tiny());
    expect(result.parts).toBe(1);
    expect(gunzipSync(bucket.objects.get("k/tiny.sql.gz") as Uint8Array).toString()).toBe("SELECT 1;\n");
  });

  it("a source that fails mid-stream aborts the upload: nothing visible", async () => {
    const bucket = new FakeBucket(64 * 1024);
    async function* failing() {
      yield* hexChunks(1 * MiB);
      throw new Error("connection lost mid-table");
    }
    await expect(uploadGzip(bucket, "k/dump.sql.gz", failing(), { partBytes: 64 * 1024 })).rejects.toThrow(
      "connection lost mid-table",
    );
    expect(bucket.partSizes("k/dump.sql.gz").length).toBeGreaterThan(1);
    expect(bucket.ops.at(-1)).toBe("abort k/dump.sql.gz");
    expect(bucket.ops).not.toContain("complete k/dump.sql.gz");
    expect(await bucket.head("k/dump.sql.gz")).toBeNull();
    expect(bucket.uploads[0]?.state).toBe("aborted");
  });

  it("a part that fails (afterPart throws on part 2) aborts the upload: nothing visible", async () => {
    const bucket = new FakeBucket(64 * 1024);
    const log: string[] = [];
    await expect(
      uploadGzip(bucket, "k/dump.sql.gz", hexChunks(2 * MiB, 64 * 1024, log), {
        partBytes: 64 * 1024,
        afterPart: (n) => {
          if (n === 2) throw new Error("worker evicted");
        },
      }),
    ).rejects.toThrow("worker evicted");
    expect(bucket.ops).toEqual([
      "create k/dump.sql.gz",
      "part 1 k/dump.sql.gz",
      "part 2 k/dump.sql.gz",
      "abort k/dump.sql.gz",
    ]);
    expect(await bucket.head("k/dump.sql.gz")).toBeNull();
    // The source was closed (its finally ran), not left suspended mid-table.
    expect(log).toEqual(["source closed"]);
  });
});

describe("runExport", () => {
  const slug = `st-${randomBytes(3).toString("hex")}`;
  const controlName = `tenantry_control_st_${randomBytes(3).toString("hex")}`;
  let deps: ReturnType<typeof seedDeps>;
  let tenantId = "";
  let target: TestDatabase;
  let dir: string;
  let resource: Record<string, string> = {};

  const exportDeps = (bucket: ExportBucket, extra: Partial<ExportDeps> = {}): ExportDeps => ({
    ...deps,
    bucket,
    sendExport: async () => undefined,
    ...extra,
  });

  async function newExport(): Promise<string> {
    const id = `exp_${randomBytes(8).toString("hex")}`;
    await deps.db.insert(exportsTable).values({
      id,
      tenantId,
      slug,
      kind: "on_demand",
      status: "pending",
      objectKey: exportKeys(tenantId, id).dump,
      createdBy: "test:stream",
    });
    return id;
  }

  beforeAll(async () => {
    // HTTP for the queries, the WebSocket session for the export's snapshot: both to the gateway.
    applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
    const controlUrl = await ensureControlDatabase(postgresUrl(), controlName);
    deps = seedDeps(postgresUrl(), controlUrl, `k1:${generateKey()}`, memoryKv(), "test:stream");
    const tenant = await createTenant(deps, { slug, region: "local" });
    tenantId = tenant.id;
    const [row] = await deps.db.select().from(tenants).where(eq(tenants.id, tenantId));
    if (!row) throw new Error("tenant row missing");
    resource = row.resourceRef ?? {};
    // ~24 MB of random hex in 3,000 products: gzip output of ~13 MB, three 5 MiB parts.
    await neon(await tenantConnection(deps, row)).query(
      `INSERT INTO products (sku, name, price_cents, stock, description)
       SELECT 'ST-' || i, 'Stream product ' || i, i, i % 50,
              (SELECT string_agg(md5(random()::text || i || j), '') FROM generate_series(1, 256) AS j)
       FROM generate_series(1, 3000) AS i`,
    );
    target = await createRestoreTarget("exp_gz");
    dir = await mkdtemp(join(tmpdir(), "tenantry-stream-"));
  });

  afterAll(async () => {
    if (target) await dropTestDatabase(target);
    if (dir) await rm(dir, { recursive: true, force: true });
    await superuser(async (client) => {
      if (resource.database) await client.query(`DROP DATABASE IF EXISTS "${resource.database}" WITH (FORCE)`);
      if (resource.role) await client.query(`DROP ROLE IF EXISTS "${resource.role}"`);
      await client.query(`DROP DATABASE IF EXISTS "${controlName}" WITH (FORCE)`);
    });
  });

  it("an export interrupted on part 2 is aborted, leaves no dump and no manifest, and is marked failed; a retry completes with the manifest last", async () => {
    const id = await newExport();
    const keys = exportKeys(tenantId, id);
    const bucket = new FakeBucket();
    // A manifest left by an earlier attempt must not vouch for whatever comes next.
    await bucket.put(keys.manifest, '{"stale": true}');
    bucket.ops.length = 0;

    const failed = await runExport(
      exportDeps(bucket, {
        afterPart: (n) => {
          if (n === 2) throw new Error("interrupted after part 2");
        },
      }),
      id,
    );
    expect(failed.status).toBe("failed");
    expect(failed.error).toContain("interrupted after part 2");
    expect(bucket.ops).toEqual([
      `delete ${keys.manifest}`,
      `create ${keys.dump}`,
      `part 1 ${keys.dump}`,
      `part 2 ${keys.dump}`,
      `abort ${keys.dump}`,
    ]);
    expect(await bucket.head(keys.dump)).toBeNull();
    expect(await bucket.head(keys.manifest)).toBeNull();
    expect(bucket.objects.size).toBe(0);
    expect((await getExport(deps, id)).manifest).toBeNull();

    // The retry (the queue redelivers) starts from scratch under the same keys.
    bucket.ops.length = 0;
    const done = await runExport(exportDeps(bucket), id);
    expect(done.status).toBe("complete");
    const sizes = bucket.partSizes(keys.dump);
    expect(sizes.length).toBeGreaterThanOrEqual(3);
    expect(sizes.slice(0, -1).every((size) => size === PART_BYTES)).toBe(true);
    expect(sizes.at(-1)).toBeLessThanOrEqual(PART_BYTES);
    expect(bucket.ops).toEqual([
      `delete ${keys.manifest}`,
      `create ${keys.dump}`,
      ...sizes.map((_, i) => `part ${i + 1} ${keys.dump}`),
      `complete ${keys.dump}`,
      `put ${keys.manifest}`,
    ]);
    const [row] = await deps.db.select().from(exportsTable).where(eq(exportsTable.id, id));
    expect(row?.attempts).toBe(2);
    expect(row?.error).toBeNull();

    const manifest = JSON.parse(bucket.text(keys.manifest)) as Manifest;
    const dump = bucket.objects.get(keys.dump) as Uint8Array;
    expect(manifest).toMatchObject({
      format: "tenantry-export/1",
      exportId: id,
      tenant: { id: tenantId, slug },
      object: { key: keys.dump, bytes: dump.length, parts: sizes.length, contentEncoding: "gzip" },
    });
    expect(manifest.schemaVersion).not.toBeNull();
    expect(manifest.tables.find((t) => t.name === "public.products")?.rows).toBe(3000);
    expect(row?.manifest).toEqual(manifest);
    expect(row?.bytes).toBe(dump.length);

    // Complete is final: running it again touches nothing.
    bucket.ops.length = 0;
    expect((await runExport(exportDeps(bucket), id)).status).toBe("complete");
    expect(bucket.ops).toEqual([]);

    // The stored file itself restores, and the restored database exports the same checksums.
    const file = join(dir, `${slug}.sql.gz`);
    await writeFile(file, dump);
    await run(
      "bash",
      ["-o", "pipefail", "-c", 'gunzip -c "$1" | psql -X -q -v ON_ERROR_STOP=1 -d "$2"', "restore", file, target.url],
      { maxBuffer: 16 * MiB },
    );
    const again = exportDatabase(target.url);
    for await (const _ of again.chunks) {
      // drain
    }
    expect(again.stats().tables).toEqual(manifest.tables);
  }, 240_000);

  it("a tenant whose connection cannot be used fails before uploading anything", async () => {
    const id = await newExport();
    const bucket = new FakeBucket();
    const result = await runExport(exportDeps(bucket, { encryptionKeys: `k1:${generateKey()}` }), id);
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/decrypt/);
    expect(bucket.ops).toEqual([]);
    expect(JSON.stringify(result)).not.toMatch(/postgres(ql)?:\/\//);
  }, 60_000);
});
