import { env } from "cloudflare:test";
import { and, eq, inArray } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { exportKeys } from "../../src/control/export/service.ts";
import { dispatch, type FleetDeps } from "../../src/control/fleet/dispatch.ts";
import { cancelRun, type RunProgress } from "../../src/control/fleet/runs.ts";
import { exportsTable, migrationRuns, runTenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { suspendTenant } from "../../src/control/tenants/lifecycle.ts";
import { migrations } from "../../src/generated/migrations.ts";
import {
  adminToken,
  call,
  controlDeps,
  cron,
  json,
  migrationSql,
  settle,
  sleep,
  startRun as startSharedRun,
  tenantRow,
} from "./support.ts";

const ADMIN = "http://admin.localhost";
const NAMES = migrations.map((m) => m.name);
const LATEST = NAMES.at(-1) as string;
const FIRST = NAMES[0] as string;
const SECOND = NAMES[1] as string;
const TAG = `fy${Math.random().toString(36).slice(2, 6)}`;
const S = {
  /** At 0000 with products.image_url already there: 0001 fails on it (42701). */
  canary: `${TAG}-canary`,
  n1: `${TAG}-n1`,
  n2: `${TAG}-n2`,
  n3: `${TAG}-n3`,
  /** A database never migrated: no ledger, no tables. */
  bare: `${TAG}-bare`,
  /** At the latest version: what the rollback undoes. */
  rb1: `${TAG}-rb1`,
  rb2: `${TAG}-rb2`,
  /** At 0001 with that migration's ledger checksum tampered with. */
  drift: `${TAG}-drift`,
} as const;
const MINE: string[] = Object.values(S);
const AT_FIRST = [S.canary, S.n1, S.n2, S.n3];
const TAMPERED = "0".repeat(64);
/** What rolling back 0002_order_note drops: its down file is `DROP COLUMN "note"`. */
const NOTE_DROP = `column orders.note (${NAMES[2]})`;

const deps = () => controlDeps("test:fleet-safety");

async function ledger(slug: string): Promise<{ name: string; checksum: string }[]> {
  const sql = await migrationSql(slug);
  const [present] = await sql.query("SELECT to_regclass('tenantry.migrations') IS NOT NULL AS present");
  if (!(present as { present: boolean }).present) return [];
  return (await sql.query("SELECT name, checksum FROM tenantry.migrations ORDER BY name")) as {
    name: string;
    checksum: string;
  }[];
}

/** Everything a migration could change in a tenant database: schemas, columns, indexes, ledger. */
async function fingerprint(slug: string): Promise<string> {
  const [row] = await (await migrationSql(slug)).query(
    `SELECT
       (SELECT json_agg(nspname ORDER BY nspname) FROM pg_namespace
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema') AS schemas,
       (SELECT json_agg(table_schema || '.' || table_name || '.' || column_name || ':' || data_type ORDER BY 1)
          FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')) AS columns,
       (SELECT json_agg(schemaname || '.' || indexname ORDER BY 1)
          FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS indexes`,
  );
  return JSON.stringify({ ...(row as object), ledger: await ledger(slug) });
}

async function columns(slug: string) {
  const [row] = await (await migrationSql(slug)).query(
    `SELECT
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'image_url') AS "imageUrl",
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders' AND column_name = 'note') AS note,
       EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'order_items_product_idx') AS "productIdx"`,
  );
  return row as { imageUrl: boolean; note: boolean; productIdx: boolean };
}

const myRuns: string[] = [];

/** Starts a run (waiting while another file's runs) and remembers it as this file's. */
async function startRun(token: string, body: Record<string, unknown>): Promise<RunProgress> {
  const run = await startSharedRun(token, body);
  myRuns.push(run.id);
  return run;
}

async function waitForNoRunningRun(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await deps().db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"))).length > 0) {
    if (Date.now() > deadline) throw new Error("another run is still running");
    await sleep(1_000);
    await cron();
  }
}

async function rowsOf(runId: string) {
  const rows = await deps().db.select().from(runTenants).where(eq(runTenants.runId, runId));
  return {
    all: rows,
    of: (slug: string) => {
      const row = rows.find((r) => r.slug === slug);
      if (!row) throw new Error(`${slug} is not in run ${runId}`);
      return row;
    },
  };
}

const alertLines = (spy: { mock: { calls: unknown[][] } }, runId: string) =>
  spy.mock.calls
    .map((args) => String(args[0]))
    .filter((line) => line.includes('"fleet_alert"'))
    .map((line) => JSON.parse(line) as { alert: string; runId: string; tenant: string })
    .filter((line) => line.runId === runId);

describe("fleet safety: canary, dry run, rollback, drift", () => {
  let token: string;
  let logSpy: ReturnType<typeof vi.spyOn>;

  beforeAll(async () => {
    token = await adminToken();
    const at = (n: number) => ({ ...deps(), tenantBundle: migrations.slice(0, n) });
    await Promise.all([...AT_FIRST, S.bare].map((slug) => createTenant(at(1), { slug, region: "local" })));
    await Promise.all([
      createTenant(at(NAMES.length), { slug: S.rb1, region: "local" }),
      createTenant(at(NAMES.length), { slug: S.rb2, region: "local" }),
      createTenant(at(2), { slug: S.drift, region: "local" }),
    ]);
    await (await migrationSql(S.canary)).query("ALTER TABLE products ADD COLUMN image_url text");
    // Emptied: no ledger, no tables, as if the database had never seen a migration.
    await (await migrationSql(S.bare)).transaction((sql) => [
      sql`DROP SCHEMA tenantry CASCADE`,
      sql`DROP TABLE cart_items, carts, order_items, orders, products`,
    ]);
    await (await migrationSql(S.drift)).query("UPDATE tenantry.migrations SET checksum = $1 WHERE name = $2", [
      TAMPERED,
      SECOND,
    ]);
  }, 180_000);

  beforeEach(() => {
    logSpy = vi.spyOn(console, "log");
  });
  afterEach(() => {
    logSpy.mockRestore();
  });

  afterAll(async () => {
    // Never leave a broken tenant active (later runs in other files would count it), nor a run going.
    for (const slug of [S.canary, S.drift]) {
      const row = await tenantRow(slug).catch(() => undefined);
      if (row?.status === "active") await suspendTenant(deps(), slug);
    }
    const runs = myRuns.length
      ? await deps().db.select().from(migrationRuns).where(inArray(migrationRuns.id, myRuns))
      : [];
    for (const run of runs)
      if (run.status === "running" || run.status === "halted") await cancelRun(fleetDeps([]), run.id);
  }, 60_000);

  it("starts from the intended states", async () => {
    for (const slug of AT_FIRST)
      expect(
        (await ledger(slug)).map((r) => r.name),
        slug,
      ).toEqual([FIRST]);
    expect(await ledger(S.bare)).toEqual([]);
    expect((await ledger(S.rb1)).map((r) => r.name)).toEqual(NAMES);
    expect((await ledger(S.drift)).find((r) => r.name === SECOND)?.checksum).toBe(TAMPERED);
    expect(JSON.parse(await fingerprint(S.bare))).toMatchObject({ columns: null, indexes: null, ledger: [] });
  });

  it("a failing canary halts the run before any wave starts", async () => {
    const before = Object.fromEntries(await Promise.all(MINE.map(async (s) => [s, await fingerprint(s)])));
    const started = await startRun(token, { canaryTenants: [S.canary], wave: 5, concurrency: 5, maxFailures: 10 });
    expect(started.phases).toBeGreaterThanOrEqual(2);
    const run = await settle(token, started.id);
    expect(run.status, JSON.stringify(run)).toBe("halted");
    expect(run.haltReason).toMatch(/canary/);
    expect(run.phase).toBe(0);
    expect(run.failures).toEqual([expect.objectContaining({ slug: S.canary, status: "failed", attempts: 1 })]);

    const rows = await rowsOf(started.id);
    expect(rows.all.filter((r) => r.phase === 0).map((r) => r.slug)).toEqual([S.canary]);
    expect(rows.of(S.canary).error).toContain("42701");
    // No wave was started: every other tenant of the run (not only this file's) is untouched.
    const waves = rows.all.filter((r) => r.phase >= 1);
    expect(waves.length).toBe(run.total - 1);
    for (const row of waves) {
      expect(row, row.slug).toMatchObject({ status: "pending", attempts: 0, queuedAt: null, startedAt: null });
    }
    for (const slug of MINE) expect(await fingerprint(slug), slug).toBe(before[slug]);
    for (const slug of AT_FIRST) expect((await tenantRow(slug)).schemaVersion).toBe(FIRST);

    const alerts = alertLines(logSpy, started.id);
    expect(alerts).toContainEqual(expect.objectContaining({ alert: "tenant_migration_failed", tenant: S.canary }));
    expect(alerts.filter((a) => a.alert === "fleet_run_halted")).toHaveLength(1);

    // Cancelled, what never started is skipped.
    const cancelled = await call(`${ADMIN}/v1/migrations/runs/${started.id}/cancel`, { method: "POST", token });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as RunProgress).counts).toMatchObject({ pending: 0, skipped: run.total - 1 });
  }, 240_000);

  it("a dry run reports what each tenant would do and changes nothing in any database", async () => {
    const before = Object.fromEntries(await Promise.all(MINE.map(async (s) => [s, await fingerprint(s)])));
    const versions = Object.fromEntries(
      await Promise.all(MINE.map(async (s) => [s, (await tenantRow(s)).schemaVersion])),
    );
    const started = await startRun(token, { dryRun: true, concurrency: 10, maxFailures: 1000 });
    expect(started.dryRun).toBe(true);
    const run = await settle(token, started.id);
    // Tenants that would fail leave the run halted, waiting for a fix.
    expect(run.status).toBe("halted");

    const rows = await rowsOf(started.id);
    for (const slug of [S.n1, S.n2, S.n3]) {
      expect(rows.of(slug), slug).toMatchObject({ status: "done", error: null, fromVersion: FIRST, toVersion: LATEST });
      expect(rows.of(slug).result).toEqual({ applied: NAMES.slice(1), dryRun: true });
    }
    expect(rows.of(S.bare)).toMatchObject({ status: "done", toVersion: LATEST });
    expect(rows.of(S.bare).result).toEqual({ applied: NAMES, dryRun: true });
    for (const slug of [S.rb1, S.rb2]) expect(rows.of(slug).result).toEqual({ applied: [], dryRun: true });
    // What would fail is reported as it would fail.
    expect(rows.of(S.canary)).toMatchObject({ status: "failed", toVersion: null });
    expect(rows.of(S.canary).error).toContain("42701");
    expect(rows.of(S.drift)).toMatchObject({ status: "drift", toVersion: null });

    for (const slug of MINE) {
      expect(await fingerprint(slug), slug).toBe(before[slug]);
      expect((await tenantRow(slug)).schemaVersion, slug).toBe(versions[slug]);
    }
    // Not even the ledger schema was left behind where there was none.
    expect(await ledger(S.bare)).toEqual([]);
    expect(JSON.parse(before[S.bare] as string).schemas).not.toContain("tenantry");

    // A dry rollback reports what it would undo, and undoes nothing either.
    const dry = await startRun(token, { kind: "rollback", steps: 2, dryRun: true, concurrency: 10, maxFailures: 1000 });
    // The run lists what it would drop (index drops lose no data and are not listed).
    expect(dry.drops).toContain(NOTE_DROP);
    expect(dry.force).toBe(false);
    await settle(token, dry.id);
    const dryRows = await rowsOf(dry.id);
    for (const slug of [S.rb1, S.rb2]) {
      expect(dryRows.of(slug), slug).toMatchObject({ status: "done", fromVersion: LATEST, toVersion: SECOND });
      expect(dryRows.of(slug).result).toEqual({ rolledBack: [LATEST, NAMES[2]], dryRun: true, drops: [NOTE_DROP] });
    }
    for (const slug of MINE) expect(await fingerprint(slug), slug).toBe(before[slug]);
  }, 240_000);

  it("a canary that names no active tenant is refused, rather than run without a canary", async () => {
    await waitForNoRunningRun();
    const response = await call(`${ADMIN}/v1/migrations/runs`, {
      ...json({ canaryTenants: [S.n1, `${TAG}-nope`], wave: 5 }),
      token,
    });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { code: string; errors: { path: string; message: string }[] };
    expect(body.code).toBe("validation_failed");
    expect(body.errors).toEqual([expect.objectContaining({ path: "canaryTenants" })]);
    expect(JSON.stringify(body.errors)).toContain(`${TAG}-nope`);
    expect(await deps().db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"))).toEqual([]);
  });

  it("a rollback needs steps", async () => {
    const response = await call(`${ADMIN}/v1/migrations/runs`, { ...json({ kind: "rollback" }), token });
    expect(response.status).toBe(422);
    expect(((await response.json()) as { code: string }).code).toBe("validation_failed");
  });

  it("rolling back the last two migrations restores the previous schema", async () => {
    expect(await columns(S.rb1)).toEqual({ imageUrl: true, note: true, productIdx: true });
    // A rollback run for this file's tenants only (see the header), then cron → queue → consumer.
    await waitForNoRunningRun();
    const runId = `run_test_${TAG}_rollback`;
    const ids = await Promise.all([S.rb1, S.rb2].map(async (slug) => (await tenantRow(slug)).id));
    await deps().db.insert(migrationRuns).values({
      id: runId,
      kind: "rollback",
      steps: 2,
      status: "running",
      concurrency: 5,
      maxFailures: 0,
      phases: 1,
      createdBy: "test:fleet-safety",
    });
    myRuns.push(runId);
    await deps()
      .db.insert(runTenants)
      .values([S.rb1, S.rb2].map((slug, i) => ({ runId, tenantId: ids[i] as string, slug, phase: 0 })));
    await cron();
    const run = await settle(token, runId);
    expect(run.status, JSON.stringify(run)).toBe("completed");

    const rows = await rowsOf(runId);
    for (const slug of [S.rb1, S.rb2]) {
      expect(rows.of(slug), slug).toMatchObject({
        status: "done",
        attempts: 1,
        fromVersion: LATEST,
        toVersion: SECOND,
      });
      // It drops orders.note: an export of the tenant was taken to R2 first (drop-guard.ts).
      const result = rows.of(slug).result as { exportId?: string };
      expect(result).toEqual({
        rolledBack: [LATEST, NAMES[2]],
        dryRun: false,
        drops: [NOTE_DROP],
        exportId: expect.stringMatching(/^exp_/),
      });
      const [taken] = await deps()
        .db.select()
        .from(exportsTable)
        .where(eq(exportsTable.id, result.exportId as string));
      expect(taken).toMatchObject({ slug, kind: "pre_rollback", status: "complete" });
      const manifest = await env.EXPORTS.get(exportKeys(taken?.tenantId as string, taken?.id as string).manifest);
      expect(manifest).not.toBeNull();
      const tables = ((await manifest?.json()) as { tables: { name: string }[] } | undefined)?.tables ?? [];
      expect(tables.map((t) => t.name)).toContain("public.orders");
      expect((await ledger(slug)).map((r) => r.name)).toEqual([FIRST, SECOND]);
      expect(await columns(slug)).toEqual({ imageUrl: true, note: false, productIdx: false });
      expect((await tenantRow(slug)).schemaVersion).toBe(SECOND);
    }
  }, 240_000);

  it("drift is reported, alerted and never fixed, while the others roll forward", async () => {
    // The canary's conflict is fixed, so drift is this file's only failure in the run.
    await (await migrationSql(S.canary)).query("ALTER TABLE products DROP COLUMN image_url");
    const started = await startRun(token, { concurrency: 10, maxFailures: 1000 });
    const run = await settle(token, started.id);
    expect(run.status).toBe("halted");
    expect(run.failures.filter((f) => MINE.includes(f.slug))).toEqual([
      expect.objectContaining({ slug: S.drift, status: "drift", migration: SECOND }),
    ]);

    const rows = await rowsOf(started.id);
    expect(rows.of(S.drift)).toMatchObject({ status: "drift", attempts: 1, toVersion: null });
    expect(rows.of(S.drift).error).toContain(SECOND);
    expect(rows.of(S.drift).error).toMatch(/checksum/);
    // The ledger keeps what was found, and nothing after the drifted migration was applied.
    const found = await ledger(S.drift);
    expect(found.map((r) => r.name)).toEqual([FIRST, SECOND]);
    expect(found.find((r) => r.name === SECOND)?.checksum).toBe(TAMPERED);
    expect(await columns(S.drift)).toEqual({ imageUrl: true, note: false, productIdx: false });
    expect((await tenantRow(S.drift)).schemaVersion).toBe(SECOND);
    expect(alertLines(logSpy, started.id)).toContainEqual(
      expect.objectContaining({
        alert: "tenant_migration_failed",
        tenant: S.drift,
        migration: SECOND,
        status: "drift",
      }),
    );

    // Everyone else of this file is on the latest version, the rolled-back tenants included.
    for (const slug of MINE.filter((s) => s !== S.drift)) {
      expect(rows.of(slug), slug).toMatchObject({ status: "done", toVersion: LATEST });
      expect(
        (await ledger(slug)).map((r) => r.name),
        slug,
      ).toEqual(NAMES);
      expect((await tenantRow(slug)).schemaVersion, slug).toBe(LATEST);
    }

    // Resumed, the drifted tenant is tried again and drifts again: nothing repairs it.
    const resumed = await call(`${ADMIN}/v1/migrations/runs/${started.id}/resume`, { method: "POST", token });
    expect(resumed.status).toBe(200);
    const again = await settle(token, started.id);
    expect(again.status).toBe("halted");
    expect((await rowsOf(started.id)).of(S.drift)).toMatchObject({ status: "drift", attempts: 2 });
    expect((await ledger(S.drift)).find((r) => r.name === SECOND)?.checksum).toBe(TAMPERED);
  }, 240_000);

  it("a halt is decided once and alerted once, however many dispatches race to it", async () => {
    await waitForNoRunningRun();
    const runId = `run_test_${TAG}_halt`;
    const [canary, wave] = await Promise.all([tenantRow(S.n1), tenantRow(S.n2)]);
    await deps().db.insert(migrationRuns).values({
      id: runId,
      kind: "apply",
      target: LATEST,
      status: "running",
      concurrency: 5,
      maxFailures: 10,
      phases: 2,
      createdBy: "test:fleet-safety",
    });
    myRuns.push(runId);
    await deps()
      .db.insert(runTenants)
      .values([
        { runId, tenantId: canary.id, slug: canary.slug, phase: 0, status: "failed", attempts: 1, error: "x" },
        { runId, tenantId: wave.id, slug: wave.slug, phase: 1 },
      ]);
    const alerts: Record<string, unknown>[] = [];
    const sent: unknown[] = [];
    const racing = fleetDeps(sent, alerts);
    await Promise.all([dispatch(racing), dispatch(racing), dispatch(racing)]);
    expect(alerts.filter((a) => a.runId === runId)).toEqual([
      expect.objectContaining({ event: "fleet_run_halted", runId }),
    ]);
    const [run] = await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId));
    expect(run).toMatchObject({ status: "halted", phase: 0 });
    const [waveRow] = await deps()
      .db.select()
      .from(runTenants)
      .where(and(eq(runTenants.runId, runId), eq(runTenants.tenantId, wave.id)));
    expect(waveRow?.status).toBe("pending");
    expect(sent).toEqual([]);
  });
});

function fleetDeps(sent: unknown[], alerts: Record<string, unknown>[] = []): FleetDeps {
  return {
    ...deps(),
    send: async (messages) => {
      sent.push(...messages);
    },
    alert: async (payload) => {
      alerts.push(payload);
    },
  };
}
