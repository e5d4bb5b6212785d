/**
 * GDPR delete and exports, inside workerd with miniflare's R2 and the Worker's own handlers:
 *
 * - `DELETE /v1/tenants/{slug}?confirm` removes every export object of the tenant from R2 (those
 *   its rows name and any other object under its prefix) and marks its rows `deleted`, audited.
 * - With `finalExport=true`, only the final export is left; the cron's sweep removes it once
 *   FINAL_EXPORT_RETENTION_DAYS have passed (not before), audited.
 * - An export queued before the delete and delivered after it writes nothing.
 * - An export running while the delete happens, finishing after it, removes what it wrote.
 * - The final export runs once the tenant is `deleting`, off KV, and after the settle wait.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { exportDeleteSteps } from "../../src/control/export/delete-steps.ts";
import { expireFinalExports } from "../../src/control/export/purge.ts";
import { type ExportMessage, exportKeys, requestExport, runExport } from "../../src/control/export/service.ts";
import { auditLog, exportsTable } from "../../src/control/schema.ts";
import { deleteTenant } from "../../src/control/tenants/lifecycle.ts";
import { slugKey } from "../../src/shared/tenant-record.ts";
import { exportDepsFrom } from "../../src/worker/fleet/handlers.ts";
import { createLogger } from "../../src/worker/http/log.ts";
import worker from "../../src/worker/index.ts";
import { adminToken, call, controlDeps, json, seedKv, tenantRow, token } from "./support.ts";

const ADMIN = "http://admin.localhost";
const TAG = `gd${Math.random().toString(36).slice(2, 6)}`;
let admin = "";

const adminCall = (path: string, init: RequestInit = {}) => call(`${ADMIN}${path}`, { ...init, token: admin });
const db = () => controlDeps("test:export-gdpr").db;
/** Export deps whose queue records messages instead of delivering them. */
const recordingDeps = (sent: ExportMessage[] = []) => ({
  ...exportDepsFrom(env, "test:export-gdpr", createLogger("warn", {})),
  sendExport: async (messages: readonly ExportMessage[]) => {
    sent.push(...messages);
  },
});

async function body<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function createTenant(slug: string): Promise<string> {
  const tenant = await body<{ id: string; status: string }>(
    await adminCall("/v1/tenants", json({ slug, region: "local" })),
    201,
  );
  expect(tenant.status).toBe("active");
  const product = await call(`http://${slug}.tenantry.localhost/api/products`, {
    ...json({ sku: `${slug}-1`, name: "GDPR test", priceCents: 100, stock: 1 }),
    token: await token(slug, "alice", { scope: "catalog:write" }),
  });
  expect(product.status, await product.clone().text()).toBe(201);
  return tenant.id;
}

/** A complete export of the tenant, run now. */
async function completeExport(slug: string): Promise<string> {
  const deps = recordingDeps();
  const requested = await requestExport(deps, slug);
  const done = await runExport(deps, requested.id);
  expect(done.status).toBe("complete");
  return done.id;
}

async function objectsOf(tenantId: string): Promise<string[]> {
  return (await env.EXPORTS.list({ prefix: `exports/${tenantId}/` })).objects.map((o) => o.key).sort();
}

async function rowsOf(tenantId: string) {
  return db().select().from(exportsTable).where(eq(exportsTable.tenantId, tenantId));
}

async function actions(slug: string): Promise<string[]> {
  const rows = await db().select().from(auditLog).where(eq(auditLog.target, slug));
  return rows.map((r) => r.action);
}

beforeAll(async () => {
  await seedKv();
  admin = await adminToken("export-gdpr");
}, 60_000);

describe("deleting a tenant removes its exports", () => {
  it("without a final export: no object under its prefix, every row deleted, audited", async () => {
    const slug = `${TAG}-plain`;
    const id = await createTenant(slug);
    const first = await completeExport(slug);
    const second = await completeExport(slug);
    // An object no row names (a leftover) goes too.
    await env.EXPORTS.put(`exports/${id}/exp_stray/dump.sql.gz`, "stray");
    expect((await objectsOf(id)).length).toBe(5);

    const deleted = await body<{ status: string }>(
      await adminCall(`/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE" }),
      200,
    );
    expect(deleted.status).toBe("deleted");
    expect(await objectsOf(id)).toEqual([]);
    const rows = await rowsOf(id);
    expect(rows.map((r) => r.id).sort()).toEqual([first, second].sort());
    expect(rows.every((r) => r.status === "deleted" && r.manifest === null && r.bytes === null)).toBe(true);
    expect(await actions(slug)).toContain("export.purge");
  }, 120_000);

  it("with a final export: only the final one is left, and the cron removes it once its retention passes", async () => {
    const slug = `${TAG}-final`;
    const id = await createTenant(slug);
    const older = await completeExport(slug);
    const deleted = await body<{ status: string }>(
      await adminCall(`/v1/tenants/${slug}?confirm=${slug}&finalExport=true`, { method: "DELETE" }),
      200,
    );
    expect(deleted.status).toBe("deleted");
    const rows = await rowsOf(id);
    const final = rows.find((r) => r.kind === "final");
    expect(final?.status).toBe("complete");
    expect(rows.find((r) => r.id === older)?.status).toBe("deleted");
    const keys = exportKeys(id, final?.id as string);
    expect(await objectsOf(id)).toEqual([keys.dump, keys.manifest].sort());

    const deps = recordingDeps();
    const finished = Date.parse(final?.finishedAt as string);
    // One day short of 30: kept.
    await expireFinalExports(deps, 30, finished + 29 * 86_400_000);
    expect(await objectsOf(id)).toEqual([keys.dump, keys.manifest].sort());
    // Past 30 days: removed, row deleted, audited.
    expect(await expireFinalExports(deps, 30, finished + 31 * 86_400_000)).toBeGreaterThanOrEqual(1);
    expect(await objectsOf(id)).toEqual([]);
    expect((await rowsOf(id)).every((r) => r.status === "deleted")).toBe(true);
    expect(await actions(slug)).toContain("export.final_expire");
  }, 120_000);

  it("an export queued before the delete and delivered after it writes nothing", async () => {
    const slug = `${TAG}-queued`;
    const id = await createTenant(slug);
    const sent: ExportMessage[] = [];
    const queued = await requestExport(recordingDeps(sent), slug);
    expect(sent).toEqual([{ kind: "export", exportId: queued.id }]);
    await body(await adminCall(`/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE" }), 200);

    // The Worker's queue handler gets the message now.
    const batch = createMessageBatch<ExportMessage>("tenantry-fleet", [
      { id: "late-1", timestamp: Date.now(), attempts: 1, body: sent[0] as ExportMessage },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(await objectsOf(id)).toEqual([]);
    const [row] = await rowsOf(id);
    // The purge marked it while it waited; delivered, it is left alone (no dump, no failure).
    expect(row?.status).toBe("deleted");
    expect(row?.attempts).toBe(0);
  }, 120_000);

  it("an export running during the delete and finishing after it removes what it wrote", async () => {
    const slug = `${TAG}-racing`;
    const id = await createTenant(slug);
    const sent: ExportMessage[] = [];
    const queued = await requestExport(recordingDeps(sent), slug);
    const deps = {
      ...recordingDeps(),
      // After the dump's last part is uploaded and before the upload completes and the manifest
      // is written: the tenant is deleted (its database dropped, its exports purged).
      afterPart: async () => {
        await deleteTenant(
          controlDeps("test:export-gdpr"),
          slug,
          slug,
          exportDeleteSteps(recordingDeps(), slug, false),
        );
      },
    };
    const view = await runExport(deps, queued.id);
    expect(view.status).toBe("deleted");
    expect(await actions(slug)).toContain("export.discard");
    expect(await objectsOf(id)).toEqual([]);
    const [row] = await db()
      .select()
      .from(exportsTable)
      .where(and(eq(exportsTable.tenantId, id), eq(exportsTable.id, queued.id)));
    expect(row?.status).toBe("deleted");
  }, 120_000);

  it("the final export runs with the tenant deleting, off KV, after the settle wait", async () => {
    const slug = `${TAG}-order`;
    await createTenant(slug);
    const seen: string[] = [];
    const steps = exportDeleteSteps(recordingDeps(), slug, true);
    const deleted = await deleteTenant(controlDeps("test:export-gdpr"), slug, slug, {
      ...steps,
      settle: async () => {
        seen.push("settle");
      },
      finalExport: async () => {
        seen.push(`status:${(await tenantRow(slug)).status}`);
        seen.push(`kv:${(await env.TENANTS.get(slugKey(slug))) === null ? "gone" : "present"}`);
        return (steps.finalExport as () => Promise<string>)();
      },
    });
    expect(deleted.status).toBe("deleted");
    expect(seen).toEqual(["settle", "status:deleting", "kv:gone"]);
  }, 120_000);
});
