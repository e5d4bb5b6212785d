/**
 * Exports inside workerd, with the Worker's own handlers and miniflare's R2:
 *
 * - uploadGzip into real (miniflare) R2: equal 5 MiB parts are accepted; an upload interrupted on
 *   part 2 leaves no object at all; the source is read no faster than parts are uploaded.
 * - Deleting a tenant with `finalExport=true` leaves a complete `final` export (manifest, R2
 *   objects), which retention never prunes.
 * - The nightly cron (`scheduled` with "0 3 * * *") queues one export per active tenant and none for
 *   a suspended or deleted one; the Worker's `queue` handler runs them; with EXPORT_RETENTION=2 the
 *   third night expires the first export (its R2 objects are deleted, its status is `expired`).
 * - Signed download links: accepted on the tenant's own host (a gzip of SQL with COPY blocks);
 *   refused on another tenant's host, when the signature, expiry or id is tampered with (403
 *   link_invalid), and once expired (410 link_expired); a dump without its manifest (a half-done
 *   export) is 404.
 *
 * The control database is shared with every other test file, and the nightly cron queues an export
 * for every active tenant in it. Delivering those would run exports of other files' tenants (and add
 * `export.complete` entries to audit trails they check exactly), so the cron runs with a queue that
 * records its messages, and only this file's messages are handed to the Worker's queue handler.
 * Slugs here start with a per-process `el…-` tag.
 */
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  env,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { inArray } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { applyRetention, type ExportMessage, exportKeys } from "../../src/control/export/service.ts";
import { type ExportBucket, PART_BYTES, uploadGzip } from "../../src/control/export/upload.ts";
import { exportsTable } from "../../src/control/schema.ts";
import { signExportLink } from "../../src/shared/crypto/signed-link.ts";
import { exportDepsFrom } from "../../src/worker/fleet/handlers.ts";
import { createLogger } from "../../src/worker/http/log.ts";
import worker from "../../src/worker/index.ts";
import { adminToken, call, controlDeps, json, seedKv, token } from "./support.ts";

const ADMIN = "http://admin.localhost";
const TAG = `el${Math.random().toString(36).slice(2, 6)}`;
const A = `${TAG}-alpha`;
const B = `${TAG}-beta`;
const SUSPENDED = `${TAG}-sleepy`;
const DELETED = `${TAG}-gone`;
const MiB = 1024 * 1024;

interface TenantView {
  id: string;
  slug: string;
  status: string;
}

interface ExportView {
  id: string;
  tenant: string;
  kind: string;
  status: string;
  bytes: number | null;
  rows: number | null;
  tables: number | null;
  manifest?: { object: { key: string; parts: number; bytes: number }; tables: { name: string; rows: number }[] } | null;
}

let admin = "";
const ids: Record<string, string> = {};

async function body<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function problem(response: Response, status: number, code: string): Promise<void> {
  const parsed = await body<{ code: string }>(response, status);
  expect(parsed.code).toBe(code);
}

const adminCall = (path: string, init: RequestInit = {}) => call(`${ADMIN}${path}`, { ...init, token: admin });
const host = (slug: string) => `${slug}.tenantry.localhost`;
const db = () => controlDeps("test:export-lifecycle").db;

async function createTenant(slug: string, sku: string): Promise<TenantView> {
  const tenant = await body<TenantView>(await adminCall("/v1/tenants", json({ slug, region: "local" })), 201);
  expect(tenant.status).toBe("active");
  const product = await call(`http://${host(slug)}/api/products`, {
    ...json({ sku, name: `Export test ${slug}`, priceCents: 4200, stock: 7 }),
    token: await token(slug, "alice", { scope: "catalog:write" }),
  });
  expect(product.status, await product.clone().text()).toBe(201);
  return tenant;
}

async function gunzipText(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  return new Response(stream?.pipeThrough(new DecompressionStream("gzip"))).text();
}

async function waitFor(exportId: string): Promise<ExportView> {
  let view = await body<ExportView>(await adminCall(`/v1/exports/${exportId}`), 200);
  for (let i = 0; i < 300 && view.status !== "complete" && view.status !== "failed"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    view = await body<ExportView>(await adminCall(`/v1/exports/${exportId}`), 200);
  }
  return view;
}

async function listExports(slug: string): Promise<ExportView[]> {
  return (await body<{ items: ExportView[] }>(await adminCall(`/v1/tenants/${slug}/exports`), 200)).items;
}

/** Poorly compressible text: random hex lines. */
async function* hexChunks(total: number, chunk = 64 * 1024): AsyncGenerator<string> {
  const bytes = new Uint8Array(chunk / 2);
  for (let sent = 0; sent < total; sent += chunk) {
    crypto.getRandomValues(bytes);
    yield `${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}\n`;
  }
}

beforeAll(async () => {
  await seedKv();
  admin = await adminToken("export-lifecycle");
  for (const [slug, sku] of [
    [A, "EL-ALPHA-1"],
    [B, "EL-BETA-1"],
    [SUSPENDED, "EL-SLEEPY-1"],
    [DELETED, "EL-GONE-1"],
  ] as const) {
    ids[slug] = (await createTenant(slug, sku)).id;
  }
  await body(await adminCall(`/v1/tenants/${SUSPENDED}/suspend`, { method: "POST" }), 200);
}, 180_000);

describe("uploadGzip into R2 (miniflare)", () => {
  it("equal 5 MiB parts are accepted and the object is the gzip of the text", async () => {
    const key = `test/${TAG}/whole.sql.gz`;
    const text: string[] = [];
    async function* source() {
      for await (const chunk of hexChunks(12 * MiB)) {
        text.push(chunk);
        yield chunk;
      }
    }
    const result = await uploadGzip(env.EXPORTS, key, source());
    expect(result.parts).toBe(2);
    const object = await env.EXPORTS.get(key);
    expect(object?.size).toBe(result.bytes);
    expect(result.bytes).toBeGreaterThan(PART_BYTES);
    expect(await gunzipText(object?.body ?? null)).toBe(text.join(""));
    await env.EXPORTS.delete(key);
  }, 120_000);

  it("an upload interrupted on part 2 leaves no object at all", async () => {
    const key = `test/${TAG}/interrupted.sql.gz`;
    await expect(
      uploadGzip(env.EXPORTS, key, hexChunks(12 * MiB), {
        afterPart: (n) => {
          if (n === 2) throw new Error("evicted mid-upload");
        },
      }),
    ).rejects.toThrow("evicted mid-upload");
    expect(await env.EXPORTS.head(key)).toBeNull();
    expect((await env.EXPORTS.list({ prefix: `test/${TAG}/` })).objects).toEqual([]);
  }, 120_000);

  it("reads the source no faster than parts are uploaded (workerd's CompressionStream ignores backpressure)", async () => {
    const partBytes = 64 * 1024;
    let pulled = 0;
    const pulledAtPart: number[] = [];
    async function* counted() {
      for await (const chunk of hexChunks(16 * MiB)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const bucket: ExportBucket = {
      createMultipartUpload: async () => ({
        uploadPart: async (partNumber) => {
          pulledAtPart.push(pulled);
          await new Promise((resolve) => setTimeout(resolve, 2));
          return { partNumber, etag: String(partNumber) };
        },
        complete: async () => ({}),
        abort: async () => undefined,
      }),
      put: async () => ({}),
      head: async () => null,
      delete: async () => undefined,
    };
    const result = await uploadGzip(bucket, "k", counted(), { partBytes });
    const ratio = result.bytes / pulled;
    const ahead = pulledAtPart.map((input, i) => input * ratio - i * partBytes);
    // Before the fix: the whole output (~9 MB here) was produced before the first part went out.
    expect(Math.max(...ahead)).toBeLessThan(1 * MiB);
  }, 120_000);
});

describe("the final export before a delete", () => {
  it("DELETE ?confirm&finalExport=true leaves a complete final export with its manifest and R2 objects", async () => {
    const deleted = await body<TenantView>(
      await adminCall(`/v1/tenants/${DELETED}?confirm=${DELETED}&finalExport=true`, { method: "DELETE" }),
      200,
    );
    expect(deleted.status).toBe("deleted");
    const [final, ...others] = await listExports(DELETED);
    expect(others).toEqual([]);
    expect(final).toMatchObject({ tenant: DELETED, kind: "final", status: "complete" });
    const shown = await body<ExportView>(await adminCall(`/v1/exports/${final?.id}`), 200);
    const keys = exportKeys(ids[DELETED] as string, final?.id as string);
    expect(shown.manifest?.object.key).toBe(keys.dump);
    expect(shown.manifest?.tables.find((t) => t.name === "public.products")?.rows).toBe(1);
    expect(await env.EXPORTS.head(keys.manifest)).not.toBeNull();
    const dump = await env.EXPORTS.get(keys.dump);
    expect(dump?.size).toBe(shown.manifest?.object.bytes);
    const sql = await gunzipText(dump?.body ?? null);
    expect(sql).toContain('COPY "public"."products"');
    expect(sql).toContain("EL-GONE-1");
    expect(sql.trimEnd().endsWith("COMMIT;")).toBe(true);

    // Retention never prunes a final export, even keeping nothing else.
    const deps = { ...exportDepsFrom(env, "test:export-lifecycle", createLogger("warn", {})), retention: 1 };
    expect(await applyRetention(deps, ids[DELETED] as string)).toBe(0);
    expect(await env.EXPORTS.head(keys.dump)).not.toBeNull();
  }, 120_000);
});

describe("nightly exports", () => {
  it("the 03:00 cron exports every active tenant once, through the queue, and keeps the newest EXPORT_RETENTION", async () => {
    const sent: ExportMessage[] = [];
    const queue = {
      send: async (message: ExportMessage) => {
        sent.push(message);
      },
      sendBatch: async (messages: Iterable<{ body: ExportMessage }>) => {
        for (const message of messages) sent.push(message.body);
      },
    } as unknown as Queue;
    const nightEnv: Env = { ...env, FLEET_QUEUE: queue, EXPORT_RETENTION: "2" };
    const nights: Record<string, string>[] = [];

    for (let night = 0; night < 3; night++) {
      sent.length = 0;
      const controller = createScheduledController({
        cron: "0 3 * * *",
        scheduledTime: Date.UTC(2026, 0, 1 + night, 3),
      });
      const ctx = createExecutionContext();
      await worker.scheduled(controller, nightEnv, ctx);
      await waitOnExecutionContext(ctx);

      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((m) => m.kind === "export")).toBe(true);
      const rows = await db()
        .select()
        .from(exportsTable)
        .where(
          inArray(
            exportsTable.id,
            sent.map((m) => m.exportId),
          ),
        );
      // One message per row, every row a pending nightly export, one per tenant.
      expect(rows).toHaveLength(sent.length);
      expect(rows.every((r) => r.kind === "nightly" && r.status === "pending" && r.createdBy === "system:cron")).toBe(
        true,
      );
      expect(new Set(rows.map((r) => r.tenantId)).size).toBe(rows.length);
      const mine = Object.fromEntries(rows.filter((r) => r.slug.startsWith(`${TAG}-`)).map((r) => [r.slug, r.id]));
      // The active ones, not the suspended one, not the deleted one.
      expect(Object.keys(mine).sort()).toEqual([A, B].sort());
      nights.push(mine);

      // The Worker's queue handler runs this file's exports.
      const batch = createMessageBatch<ExportMessage>(
        "tenantry-fleet",
        Object.values(mine).map((exportId, i) => ({
          id: `night-${night}-${i}`,
          timestamp: Date.now(),
          attempts: 1,
          body: { kind: "export", exportId },
        })),
      );
      const queueCtx = createExecutionContext();
      await worker.queue(batch, nightEnv, queueCtx);
      const result = await getQueueResult(batch, queueCtx);
      expect(result.retryMessages).toEqual([]);
      expect([...result.explicitAcks].sort()).toEqual([`night-${night}-0`, `night-${night}-1`]);
    }

    for (const slug of [A, B]) {
      const items = await listExports(slug);
      const nightly = items.filter((e) => e.kind === "nightly");
      // Newest first: the last two nights kept, the first expired.
      expect(nightly.map((e) => e.id)).toEqual(nights.map((n) => n[slug]).reverse());
      expect(nightly.map((e) => e.status)).toEqual(["complete", "complete", "expired"]);
      for (const e of nightly) {
        const keys = exportKeys(ids[slug] as string, e.id);
        const present = e.status === "complete";
        expect((await env.EXPORTS.head(keys.dump)) !== null, `${e.id} dump`).toBe(present);
        expect((await env.EXPORTS.head(keys.manifest)) !== null, `${e.id} manifest`).toBe(present);
      }
      const newest = await body<ExportView>(await adminCall(`/v1/exports/${nightly[0]?.id}`), 200);
      expect(newest.manifest?.tables.find((t) => t.name === "public.products")?.rows).toBe(1);
    }
    expect(await listExports(SUSPENDED)).toEqual([]);
  }, 300_000);
});

describe("signed download links", () => {
  let exportId = "";
  let link = "";

  beforeAll(async () => {
    const requested = await body<ExportView>(await adminCall(`/v1/tenants/${A}/exports`, { method: "POST" }), 202);
    const done = await waitFor(requested.id);
    expect(done.status).toBe("complete");
    exportId = done.id;
    link = (await body<{ url: string }>(await adminCall(`/v1/exports/${exportId}/link`, { method: "POST" }), 200)).url;
  }, 120_000);

  it("is served on the tenant's own host: a gzip of SQL with COPY blocks", async () => {
    const url = new URL(link);
    expect(url.host).toBe(host(A));
    expect(url.pathname).toBe(`/exports/${exportId}`);
    const response = await call(link);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/gzip");
    expect(response.headers.get("content-disposition")).toContain(`${A}-${exportId}.sql.gz`);
    expect(response.headers.get("cache-control")).toContain("no-store");
    const sql = await gunzipText(response.body);
    expect(sql).toContain('COPY "public"."products"');
    expect(sql).toContain("EL-ALPHA-1");
    expect(sql).not.toContain("EL-BETA-1");
  });

  it("is refused on another tenant's host (403 link_invalid)", async () => {
    await problem(await call(link.replace(host(A), host(B))), 403, "link_invalid");
    await problem(await call(link.replace(host(A), "acme.localhost")), 403, "link_invalid");
  });

  it("is refused when the signature, expiry or export id is tampered with (403 link_invalid)", async () => {
    const url = new URL(link);
    const sig = url.searchParams.get("sig") as string;
    const expires = url.searchParams.get("expires") as string;
    const variant = (change: (u: URL) => void) => {
      const copy = new URL(link);
      change(copy);
      return copy.toString();
    };
    const flipped = `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`;
    const otherId = `exp_${"0".repeat(16)}`;
    for (const tampered of [
      variant((u) => u.searchParams.set("sig", flipped)),
      variant((u) => u.searchParams.set("sig", sig.toUpperCase())),
      variant((u) => u.searchParams.delete("sig")),
      variant((u) => u.searchParams.set("expires", String(Number(expires) + 3600))),
      variant((u) => u.searchParams.set("expires", `${expires}0`)),
      variant((u) => u.searchParams.delete("expires")),
      variant((u) => {
        u.pathname = `/exports/${otherId}`;
      }),
    ]) {
      await problem(await call(tampered), 403, "link_invalid");
    }
    // B's own export id under A's signature: the id is signed too.
    const [bExport] = await listExports(B);
    await problem(
      await call(
        variant((u) => {
          u.pathname = `/exports/${bExport?.id}`;
        }).replace(host(A), host(B)),
      ),
      403,
      "link_invalid",
    );
  });

  it("is refused once expired (410 link_expired)", async () => {
    const expires = Math.floor(Date.now() / 1000) - 60;
    const sig = await signExportLink(env.EXPORT_SIGNING_KEY, ids[A] as string, exportId, expires);
    await problem(
      await call(`http://${host(A)}/exports/${exportId}?expires=${expires}&sig=${sig}`),
      410,
      "link_expired",
    );
    // Expired and on the wrong host: the signature is checked first, so it is just invalid there.
    await problem(
      await call(`http://${host(B)}/exports/${exportId}?expires=${expires}&sig=${sig}`),
      403,
      "link_invalid",
    );
  });

  it("a half-done export (a dump without its manifest) is 404; the manifest is what makes it downloadable", async () => {
    const halfId = `exp_${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")}`;
    const keys = exportKeys(ids[A] as string, halfId);
    const gz = await new Response(
      new Blob(["SELECT 1;\n"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    await env.EXPORTS.put(keys.dump, gz);
    const expires = Math.floor(Date.now() / 1000) + 300;
    const url = `http://${host(A)}/exports/${halfId}?expires=${expires}&sig=${await signExportLink(env.EXPORT_SIGNING_KEY, ids[A] as string, halfId, expires)}`;
    await problem(await call(url), 404, "not_found");
    await env.EXPORTS.put(keys.manifest, "{}");
    const served = await call(url);
    expect(served.status).toBe(200);
    expect(await gunzipText(served.body)).toBe("SELECT 1;\n");
    await env.EXPORTS.delete([keys.dump, keys.manifest]);
  });

  it("an expired (retention) export is gone: a freshly signed link for it is 404", async () => {
    const expired = (await listExports(A)).find((e) => e.status === "expired");
    expect(expired).toBeDefined();
    const expires = Math.floor(Date.now() / 1000) + 300;
    const sig = await signExportLink(env.EXPORT_SIGNING_KEY, ids[A] as string, expired?.id as string, expires);
    await problem(
      await call(`http://${host(A)}/exports/${expired?.id}?expires=${expires}&sig=${sig}`),
      404,
      "not_found",
    );
    // And the admin API will not sign one.
    await problem(await adminCall(`/v1/exports/${expired?.id}/link`, { method: "POST" }), 409, "invalid_state");
  });
});
