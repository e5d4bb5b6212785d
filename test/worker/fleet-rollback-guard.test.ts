/**
 * The consumer's guard on destructive rollbacks: undoing 0003 and 0002 (0002's down file drops
 * orders.note) with no way to take an export is refused for the tenant, with nothing undone and the
 * reason recorded; the same rollback with `force` proceeds without an export. The admin API takes
 * `force` and echoes it with what the rollback would drop. (The export itself, taken to R2 when
 * the consumer can, is checked in fleet-safety; its restore with psql in test/node/fleet.)
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyTenant } from "../../src/control/fleet/consumer.ts";
import type { FleetDeps } from "../../src/control/fleet/dispatch.ts";
import { cancelRun, type RunProgress } from "../../src/control/fleet/runs.ts";
import { exportsTable, migrationRuns, runTenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { suspendTenant } from "../../src/control/tenants/lifecycle.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { adminToken, controlDeps, cron, migrationSql, sleep, startRun, tenantRow } from "./support.ts";

const TAG = `rg${Math.random().toString(36).slice(2, 6)}`;
const REFUSED = `${TAG}-refused`;
const FORCED = `${TAG}-forced`;
const NAMES = migrations.map((m) => m.name);
const LATEST = NAMES.at(-1) as string;
const NOTE_DROP = `column orders.note (${NAMES[2]})`;

/** The consumer's dependencies with no way to take an export (no exportBeforeDrop). */
const deps = (): FleetDeps => ({ ...controlDeps("test:rollback-guard"), send: async () => {} });

async function waitForNoRunningRun(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await deps().db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"))).length > 0) {
    if (Date.now() > deadline) throw new Error("another run is still running");
    await sleep(1_000);
    await cron();
  }
}

/** A rollback run of two steps for one tenant only, worked by the consumer; its run_tenants row after. */
async function rollback(slug: string, force: boolean) {
  await waitForNoRunningRun();
  const tenant = await tenantRow(slug);
  const runId = `run_test_${TAG}_${force ? "force" : "plain"}`;
  await deps().db.insert(migrationRuns).values({
    id: runId,
    kind: "rollback",
    steps: 2,
    force,
    status: "running",
    concurrency: 1,
    maxFailures: 0,
    phases: 1,
    createdBy: "test:rollback-guard",
  });
  await deps()
    .db.insert(runTenants)
    .values({ runId, tenantId: tenant.id, slug, phase: 0, status: "queued", queuedAt: new Date().toISOString() });
  const outcome = await applyTenant(deps(), { kind: "migrate", runId, tenantId: tenant.id });
  const [row] = await deps().db.select().from(runTenants).where(eq(runTenants.runId, runId));
  return { outcome, row };
}

async function shape(slug: string) {
  const [row] = await (await migrationSql(slug)).query(
    `SELECT
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note') AS note,
       EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'order_items_product_idx') AS "productIdx"`,
  );
  return row as { note: boolean; productIdx: boolean };
}

describe("fleet: a rollback that drops data", () => {
  beforeAll(async () => {
    await Promise.all([REFUSED, FORCED].map((slug) => createTenant(deps(), { slug, region: "local" })));
  }, 120_000);

  afterAll(async () => {
    for (const slug of [REFUSED, FORCED]) {
      const row = await tenantRow(slug).catch(() => undefined);
      if (row?.status === "active") await suspendTenant(deps(), slug);
    }
  });

  it("is refused for a tenant when no export can be taken, with nothing undone", async () => {
    const { outcome, row } = await rollback(REFUSED, false);
    expect(outcome).toBe("failed");
    expect(row?.error).toContain("rollback refused");
    expect(row?.error).toContain(NOTE_DROP);
    expect(await shape(REFUSED)).toEqual({ note: true, productIdx: true });
    expect((await tenantRow(REFUSED)).schemaVersion).toBe(LATEST);
  });

  it("with force, proceeds without an export", async () => {
    const { outcome, row } = await rollback(FORCED, true);
    expect(outcome).toBe("done");
    expect(row?.result).toEqual({ rolledBack: [LATEST, NAMES[2]], dryRun: false, drops: [NOTE_DROP] });
    expect(await shape(FORCED)).toEqual({ note: false, productIdx: false });
    const tenant = await tenantRow(FORCED);
    expect(tenant.schemaVersion).toBe(NAMES[1]);
    expect(await deps().db.select().from(exportsTable).where(eq(exportsTable.tenantId, tenant.id))).toEqual([]);
  });

  it("the admin API takes force and lists what the rollback drops", async () => {
    const token = await adminToken();
    const run: RunProgress = await startRun(token, { kind: "rollback", steps: 2, force: true, dryRun: true });
    await cancelRun(deps(), run.id);
    expect(run).toMatchObject({ kind: "rollback", steps: 2, force: true, dryRun: true });
    expect(run.drops).toContain(NOTE_DROP);
  });
});
