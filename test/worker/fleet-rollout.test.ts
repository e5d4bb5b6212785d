import { and, eq, inArray } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { RunProgress } from "../../src/control/fleet/runs.ts";
import { runTenants, tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { suspendTenant } from "../../src/control/tenants/lifecycle.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { adminToken, call, controlDeps, cron, migrationSql, settle, sleep, startRun } from "./support.ts";

const ADMIN = "http://admin.localhost";
const NAMES = migrations.map((m) => m.name);
const LATEST = NAMES.at(-1) as string;
const FIRST = NAMES[0] as string;
const TENANTS = 22;
/** This file's tenants: a slug prefix no other file uses, unique per test process. */
const TAG = `fr${Math.random().toString(36).slice(2, 6)}`;
const slugs = Array.from({ length: TENANTS }, (_, i) => `${TAG}-t${String(i).padStart(2, "0")}`);

const deps = () => controlDeps("test:fleet-rollout");
/** What a tenant database holds: its ledger and the objects the three later migrations add. */
async function inspect(slug: string) {
  const sql = await migrationSql(slug);
  const [present] = await sql.query("SELECT to_regclass('tenantry.migrations') IS NOT NULL AS present");
  const ledger = (present as { present: boolean }).present
    ? ((await sql.query("SELECT name, checksum FROM tenantry.migrations ORDER BY name")) as {
        name: string;
        checksum: string;
      }[])
    : [];
  const [objects] = await sql.query(
    `SELECT
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'image_url') AS "imageUrl",
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders' AND column_name = 'note') AS note,
       EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'order_items_product_idx') AS "productIdx"`,
  );
  return {
    ledger: ledger.map((row) => row.name),
    ...(objects as { imageUrl: boolean; note: boolean; productIdx: boolean }),
  };
}

async function rowsOf(runId: string) {
  const ids = (await deps().db.select().from(tenants).where(inArray(tenants.slug, slugs))).map((t) => t.id);
  return deps()
    .db.select()
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), inArray(runTenants.tenantId, ids)));
}

const alertLines = (spy: { mock: { calls: unknown[][] } }) =>
  spy.mock.calls
    .map((args) => String(args[0]))
    .filter((line) => line.includes('"fleet_alert"'))
    .map((line) => JSON.parse(line) as { event: string; alert: string; runId: string; tenant: string });

describe("fleet rollout: cron → queue → consumer across ≥ 20 tenants", () => {
  let token: string;
  let failing: string;
  let canaries: string[];
  let logSpy: ReturnType<typeof vi.spyOn>;

  beforeAll(async () => {
    token = await adminToken();
    const old = { ...deps(), tenantBundle: migrations.slice(0, 1) };
    // A few at a time: each one provisions a database and migrates it to 0000_store.
    for (let start = 0; start < slugs.length; start += 4) {
      await Promise.all(slugs.slice(start, start + 4).map((slug) => createTenant(old, { slug, region: "local" })));
    }
    const rows = await deps().db.select().from(tenants).where(inArray(tenants.slug, slugs));
    const byId = [...rows].sort((a, b) => (a.id < b.id ? -1 : 1));
    // Two named canaries; the failing tenant is the first of the rest by id, so it lands in an early
    // wave and later waves still run after it failed.
    canaries = byId.slice(0, 2).map((t) => t.slug);
    failing = (byId[2] as { slug: string }).slug;
    // The conflicting object: 0001_product_image adds products.image_url, which is already there.
    await (await migrationSql(failing)).query("ALTER TABLE products ADD COLUMN image_url text");
  }, 240_000);

  beforeEach(() => {
    logSpy = vi.spyOn(console, "log");
  });
  afterEach(() => {
    logSpy.mockRestore();
  });

  afterAll(async () => {
    // Never leave a broken tenant active: later runs (other files) would count it as a failure.
    const [row] = failing ? await deps().db.select().from(tenants).where(eq(tenants.slug, failing)) : [];
    if (row && row.status === "active" && row.schemaVersion !== LATEST) await suspendTenant(deps(), failing);
  }, 60_000);

  it("starts with every tenant of this file at 0000_store", async () => {
    const rows = await deps().db.select().from(tenants).where(inArray(tenants.slug, slugs));
    expect(rows).toHaveLength(TENANTS);
    for (const row of rows) expect(row).toMatchObject({ status: "active", schemaVersion: FIRST });
    // Any tenant but the one given a conflicting column (picked by id, so any index: it was once slugs[5]).
    const plain = slugs.find((slug) => slug !== failing) as string;
    expect(await inspect(plain)).toEqual({
      ledger: [FIRST],
      imageUrl: false,
      note: false,
      productIdx: false,
    });
    expect((await inspect(failing)).imageUrl).toBe(true);
  });

  let runId: string;

  it("rolls out to all but the conflicting tenant, records its error and alerts", async () => {
    const started = await startRun(token, {
      canaryTenants: canaries,
      wave: 10,
      concurrency: 5,
      maxFailures: 5,
    });
    runId = started.id;
    expect(started).toMatchObject({ kind: "apply", target: LATEST, dryRun: false, concurrency: 5, maxFailures: 5 });
    expect(started.phases).toBeGreaterThanOrEqual(3);

    const run = await settle(token, runId);
    const rows = await rowsOf(runId);
    expect(rows).toHaveLength(TENANTS);
    const failedRow = rows.find((row) => row.slug === failing);
    expect(failedRow).toMatchObject({ status: "failed", attempts: 1, toVersion: null });
    expect(failedRow?.error).toContain("42701");
    expect(failedRow?.error).toContain("image_url");
    // The conflicting tenant was in a wave before the last, and the waves after it still ran.
    expect(failedRow?.phase).toBeLessThan(run.phases - 1);
    for (const row of rows.filter((r) => r.slug !== failing)) {
      expect(row, row.slug).toMatchObject({
        status: "done",
        attempts: 1,
        error: null,
        fromVersion: FIRST,
        toVersion: LATEST,
      });
      expect(row.result).toEqual({ applied: NAMES.slice(1), dryRun: false });
    }
    for (const row of rows.filter((r) => canaries.includes(r.slug))) expect(row.phase).toBe(0);

    // Every other tenant's database has all four migrations, each exactly once.
    for (const slug of slugs.filter((s) => s !== failing)) {
      expect(await inspect(slug), slug).toEqual({ ledger: NAMES, imageUrl: true, note: true, productIdx: true });
    }
    // The failing one: 0001 rolled back as a whole (no ledger row), nothing after it applied.
    expect(await inspect(failing)).toEqual({ ledger: [FIRST], imageUrl: true, note: false, productIdx: false });
    const versions = await deps().db.select().from(tenants).where(inArray(tenants.slug, slugs));
    for (const row of versions) expect(row.schemaVersion, row.slug).toBe(row.slug === failing ? FIRST : LATEST);

    // The run reports the failure and does not claim to be complete: it waits for a fix and a resume.
    expect(run.status, JSON.stringify(run)).toBe("halted");
    expect(run.haltReason).toBeTruthy();
    expect(run.failures).toContainEqual(expect.objectContaining({ slug: failing, status: "failed", attempts: 1 }));
    expect(run.failures.find((f) => f.slug === failing)?.error).toContain("42701");
    // The failure names the migration that failed, not only the run's target.
    expect(run.failures.find((f) => f.slug === failing)?.migration).toBe(NAMES[1]);

    // Alerts went out (logged as fleet_alert before the webhook POST) for the tenant and for the run.
    const alerts = alertLines(logSpy).filter((a) => a.runId === runId);
    expect(alerts).toContainEqual(
      expect.objectContaining({ alert: "tenant_migration_failed", tenant: failing, migration: NAMES[1] }),
    );
    expect(alerts.filter((a) => a.alert === "tenant_migration_failed" && slugs.includes(a.tenant))).toHaveLength(1);
    // The halt is alerted once, though several consumers' dispatches reach it at the same time.
    expect(alerts.filter((a) => a.alert === "fleet_run_halted")).toHaveLength(1);
  }, 240_000);

  it("resumes after the tenant is fixed and completes the run", async () => {
    await (await migrationSql(failing)).query("ALTER TABLE products DROP COLUMN image_url");
    let resumed: RunProgress | undefined;
    for (let attempt = 0; !resumed; attempt++) {
      const response = await call(`${ADMIN}/v1/migrations/runs/${runId}/resume`, { method: "POST", token });
      const body = (await response.json()) as RunProgress;
      // Another file's run may be going: resume refuses while it is.
      if (response.status === 409 && attempt < 60 && !/cannot be resumed/.test(JSON.stringify(body))) {
        await sleep(1_000);
        await cron();
        continue;
      }
      expect(response.status, JSON.stringify(body)).toBe(200);
      resumed = body;
    }
    expect(resumed.haltReason).toBeNull();

    const run = await settle(token, runId);
    const foreign = run.failures.filter((f) => !slugs.includes(f.slug));
    // Other files' tenants are not ours to fix: the run completes unless one of them failed.
    expect(run.status, JSON.stringify(run)).toBe(foreign.length === 0 ? "completed" : "halted");
    expect(run.failures.filter((f) => slugs.includes(f.slug))).toEqual([]);

    const rows = await rowsOf(runId);
    for (const row of rows) expect(row, row.slug).toMatchObject({ status: "done", error: null, toVersion: LATEST });
    const fixed = rows.find((row) => row.slug === failing);
    expect(fixed).toMatchObject({ attempts: 2, fromVersion: FIRST });
    expect(fixed?.result).toEqual({ applied: NAMES.slice(1), dryRun: false });
    // The others were not touched again.
    for (const row of rows.filter((r) => r.slug !== failing)) expect(row.attempts, row.slug).toBe(1);

    for (const slug of slugs) {
      expect(await inspect(slug), slug).toEqual({ ledger: NAMES, imageUrl: true, note: true, productIdx: true });
    }
    const versions = await deps().db.select().from(tenants).where(inArray(tenants.slug, slugs));
    for (const row of versions) expect(row.schemaVersion, row.slug).toBe(LATEST);
  }, 240_000);

  it("reports the fleet on the latest version in /v1/migrations/status", async () => {
    const behindNow = async () =>
      (await deps().db.select().from(tenants).where(eq(tenants.status, "active"))).filter(
        (t) => t.schemaVersion !== LATEST,
      ).length;
    const before = await behindNow();
    const response = await call(`${ADMIN}/v1/migrations/status`, { token });
    expect(response.status).toBe(200);
    const status = (await response.json()) as {
      latest: string;
      versions: Record<string, number>;
      behind: number;
      activeTenants: number;
    };
    expect(status.latest).toBe(LATEST);
    expect(status.versions[LATEST]).toBeGreaterThanOrEqual(TENANTS);
    // `behind` counts every active tenant not on the latest version; none of them is this file's.
    const active = await deps().db.select().from(tenants).where(eq(tenants.status, "active"));
    const behind = active.filter((t) => t.schemaVersion !== LATEST);
    expect(behind.filter((t) => slugs.includes(t.slug))).toEqual([]);
    // Other files may create tenants meanwhile: the count is the database's, before or after.
    expect([before, behind.length]).toContain(status.behind);
  });
});
