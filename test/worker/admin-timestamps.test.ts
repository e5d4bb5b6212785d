/**
 * The admin API shows every timestamp as ISO 8601 in UTC with milliseconds
 * (`2026-12-01T02:28:50.693Z`), never Postgres's text (`2026-12-01 02:28:50.693+00`): a tenant
 * shown and listed (and deleted), the audit log, a migration run, an export, and the KV record the
 * control plane projects for the edge.
 *
 * Slugs here start with `ts-`: the control database is shared with every other test file.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hostKey, slugKey } from "../../src/shared/tenant-record.ts";
import { adminToken, call, getRun, json, sleep, startRun } from "./support.ts";

const ADMIN = "http://admin.localhost";
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SLUG = `ts-${crypto.randomUUID().slice(0, 8)}`;
const HOST = `shop.${SLUG}.localhost`;

/** An ISO 8601 UTC timestamp that Date reads back to itself, within the last hour. */
function expectIso(value: unknown, what: string): void {
  expect(value, what).toMatch(ISO);
  expect(new Date(value as string).toISOString(), what).toBe(value);
  expect(Math.abs(Date.now() - Date.parse(value as string)), what).toBeLessThan(3_600_000);
}

async function body<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

interface TenantView {
  slug: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

describe("admin API timestamps are ISO 8601", () => {
  it("a tenant, shown and listed, and its KV records", async () => {
    const token = await adminToken("timestamps");
    const created = await body<TenantView>(
      await call(`${ADMIN}/v1/tenants`, { ...json({ slug: SLUG, region: "local", domains: [HOST] }), token }),
      201,
    );
    expect(created.status).toBe("active");
    expectIso(created.createdAt, "created: createdAt");
    expectIso(created.updatedAt, "created: updatedAt");
    expect(created.deletedAt).toBeNull();

    const shown = await body<TenantView>(await call(`${ADMIN}/v1/tenants/${SLUG}`, { token }), 200);
    expectIso(shown.createdAt, "shown: createdAt");
    expectIso(shown.updatedAt, "shown: updatedAt");
    expect(shown.createdAt <= shown.updatedAt).toBe(true);

    const listed = await body<{ items: TenantView[] }>(
      await call(`${ADMIN}/v1/tenants?region=local&limit=200`, { token }),
      200,
    );
    for (const item of listed.items) {
      expectIso(item.createdAt, `listed ${item.slug}: createdAt`);
      expectIso(item.updatedAt, `listed ${item.slug}: updatedAt`);
    }

    for (const key of [slugKey(SLUG), hostKey(HOST)]) {
      const record = (await env.TENANTS.get(key, "json")) as { updatedAt: string } | null;
      expectIso(record?.updatedAt, `KV ${key}: updatedAt`);
    }
  });

  it("an export, shown and listed", async () => {
    const token = await adminToken("timestamps");
    const requested = await body<{ id: string; createdAt: string }>(
      await call(`${ADMIN}/v1/tenants/${SLUG}/exports`, { method: "POST", token }),
      202,
    );
    expectIso(requested.createdAt, "requested export: createdAt");
    let shown = { status: "pending", createdAt: "", finishedAt: null as string | null };
    for (let i = 0; i < 150 && shown.status !== "complete" && shown.status !== "failed"; i++) {
      await sleep(200);
      shown = await body<typeof shown>(await call(`${ADMIN}/v1/exports/${requested.id}`, { token }), 200);
    }
    expect(shown.status).toBe("complete");
    expectIso(shown.createdAt, "export: createdAt");
    expectIso(shown.finishedAt, "export: finishedAt");
    const listed = await body<{ items: { id: string; createdAt: string; finishedAt: string | null }[] }>(
      await call(`${ADMIN}/v1/tenants/${SLUG}/exports`, { token }),
      200,
    );
    const mine = listed.items.find((e) => e.id === requested.id);
    expectIso(mine?.createdAt, "listed export: createdAt");
    expectIso(mine?.finishedAt, "listed export: finishedAt");
  }, 60_000);

  it("a migration run, started and stopped", async () => {
    const token = await adminToken("timestamps");
    // A dry run changes nothing; cancelled at once (or already complete) so other files' runs go on.
    const started = await startRun(token, { dryRun: true, canaryTenants: [SLUG] });
    expectIso(started.createdAt, "started run: createdAt");
    const cancelled = await call(`${ADMIN}/v1/migrations/runs/${started.id}/cancel`, { method: "POST", token });
    expect([200, 409]).toContain(cancelled.status);
    const run = await getRun(token, started.id);
    expect(["cancelled", "completed"]).toContain(run.status);
    expectIso(run.createdAt, "run: createdAt");
    expectIso(run.finishedAt, "run: finishedAt");
  }, 150_000);

  it("the audit log, and a deleted tenant's deletedAt", async () => {
    const token = await adminToken("timestamps");
    const deleted = await body<TenantView>(
      await call(`${ADMIN}/v1/tenants/${SLUG}?confirm=${SLUG}`, { method: "DELETE", token }),
      200,
    );
    expect(deleted.status).toBe("deleted");
    expectIso(deleted.deletedAt, "deleted: deletedAt");
    expectIso(deleted.updatedAt, "deleted: updatedAt");

    const audit = await body<{ items: { action: string; at: string }[] }>(
      await call(`${ADMIN}/v1/audit?target=${SLUG}&limit=50`, { token }),
      200,
    );
    expect(audit.items.map((e) => e.action)).toEqual(
      expect.arrayContaining(["tenant.create", "export.request", "tenant.delete"]),
    );
    for (const entry of audit.items) expectIso(entry.at, `audit ${entry.action}: at`);
  });
});
