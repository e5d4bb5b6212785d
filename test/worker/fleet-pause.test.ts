/**
 * Write pauses at the edge: while the fleet consumer applies a migration flagged `pauseWrites` to a
 * tenant, that tenant (and only that one) answers 503 `tenant_migrating` with Retry-After; before
 * and after, it serves; a migration without the flag never pauses it; a failing flagged migration
 * releases it too. The moment "while it runs" is caught deterministically: the test holds the
 * driver's request carrying the migration's statements and calls the Worker from there.
 *
 * The runs are this file's own (one run_tenants row, for its tenant), started once no other run is
 * running, and the consumer's work is called directly with a bundle holding the probe migrations.
 */
import { env } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApplyOutcome, applyTenant } from "../../src/control/fleet/consumer.ts";
import type { FleetDeps } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns, runTenants, tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { suspendTenant } from "../../src/control/tenants/lifecycle.ts";
import { projectTenant } from "../../src/control/tenants/projection.ts";
import { migrations } from "../../src/generated/migrations.ts";
import type { Migration } from "../../src/shared/migrations.ts";
import { call, controlDeps, cron, sleep, tenantRow } from "./support.ts";

const TAG = `fp${Math.random().toString(36).slice(2, 6)}`;
const PAUSED = `${TAG}-paused`;
const OTHER = `${TAG}-other`;
const LATEST = migrations.at(-1)?.name as string;

const probe = (name: string, statements: string[], pauseWrites: boolean): Migration => ({
  name,
  checksum: `sum-${name}`,
  statements,
  down: null,
  pauseWrites,
});
const PAUSING = probe("9100_pause_probe", ['ALTER TABLE "products" ADD COLUMN "pause_probe" text'], true);
const PLAIN = probe("9101_plain_probe", ['ALTER TABLE "products" ADD COLUMN "plain_probe" text'], false);
const FAILING = probe(
  "9102_failing_probe",
  ['ALTER TABLE "products" ADD COLUMN "failing_probe" text', "SELECT 1 / 0"],
  true,
);

const deps = (bundle = migrations): FleetDeps => ({
  ...controlDeps("test:fleet-pause"),
  tenantBundle: bundle,
  send: async () => {},
});

interface Seen {
  readonly paused: { status: number; code?: string; retryAfter: string | null };
  readonly other: number;
  readonly record: string | undefined;
}

const host = (slug: string) => `http://${slug}.tenantry.localhost/api/products`;

async function edge(): Promise<Seen> {
  const paused = await call(host(PAUSED));
  const body = (await paused.json()) as { code?: string };
  const other = await call(host(OTHER));
  await other.body?.cancel();
  const record = await env.TENANTS.get(`slug:${PAUSED}`);
  return {
    paused: { status: paused.status, code: body.code, retryAfter: paused.headers.get("retry-after") },
    other: other.status,
    record: record ? (JSON.parse(record) as { status: string }).status : undefined,
  };
}

/**
 * Runs one migration run of `bundle` up to `target` on the paused tenant, through the consumer,
 * and looks at the edge from inside the driver request that carries `marker` (the migration's DDL).
 */
async function runObserved(bundle: Migration[], target: string, marker: string) {
  await waitForNoRunningRun();
  const row = await tenantRow(PAUSED);
  const runId = `run_test_${TAG}_${target.slice(0, 4)}`;
  const db = deps().db;
  await db.insert(migrationRuns).values({
    id: runId,
    kind: "apply",
    target,
    status: "running",
    concurrency: 1,
    maxFailures: 0,
    phases: 1,
    createdBy: "test:fleet-pause",
  });
  await db.insert(runTenants).values({
    runId,
    tenantId: row.id,
    slug: PAUSED,
    phase: 0,
    status: "queued",
    queuedAt: new Date().toISOString(),
  });
  let during: Seen | undefined;
  neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
    if (during === undefined && String(init?.body ?? "").includes(marker)) {
      during = { paused: { status: 0, retryAfter: null }, other: 0, record: undefined };
      during = await edge();
    }
    return fetch(input, init);
  };
  let outcome: ApplyOutcome;
  try {
    outcome = await applyTenant(deps(bundle), { kind: "migrate", runId, tenantId: row.id });
  } finally {
    neonConfig.fetchFunction = undefined;
  }
  return { outcome, during: during as Seen, after: await edge(), pausedBy: (await tenantRow(PAUSED)).writesPausedBy };
}

async function waitForNoRunningRun(): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await deps().db.select().from(migrationRuns).where(eq(migrationRuns.status, "running"))).length > 0) {
    if (Date.now() > deadline) throw new Error("another run is still running");
    await sleep(1_000);
    await cron();
  }
}

describe("fleet: a pause-writes migration makes only its tenant 503, only while it runs", () => {
  beforeAll(async () => {
    await Promise.all([PAUSED, OTHER].map((slug) => createTenant(deps(), { slug, region: "local" })));
  }, 120_000);

  afterAll(async () => {
    neonConfig.fetchFunction = undefined;
    // Its ledger holds probe migrations no other bundle has: never leave it active for later runs.
    for (const slug of [PAUSED, OTHER]) {
      const row = await tenantRow(slug).catch(() => undefined);
      if (row?.status === "active") await suspendTenant(deps(), slug);
    }
  });

  it("serves both tenants before any run", async () => {
    expect(await edge()).toMatchObject({ paused: { status: 200 }, other: 200, record: "active" });
  });

  it("a flagged migration: 503 tenant_migrating with Retry-After for that tenant while it runs, then released", async () => {
    const { outcome, during, after, pausedBy } = await runObserved(
      [...migrations, PAUSING],
      PAUSING.name,
      "pause_probe",
    );
    expect(outcome).toBe("done");
    expect(during.paused).toMatchObject({ status: 503, code: "tenant_migrating" });
    expect(Number(during.paused.retryAfter)).toBeGreaterThan(0);
    expect(during.record).toBe("migrating");
    expect(during.other).toBe(200);
    expect(after).toMatchObject({ paused: { status: 200 }, other: 200, record: "active" });
    expect(pausedBy).toBeNull();
    expect((await tenantRow(PAUSED)).schemaVersion).toBe(PAUSING.name);
  });

  it("a migration without the flag never pauses the tenant", async () => {
    const { outcome, during, after } = await runObserved([...migrations, PAUSING, PLAIN], PLAIN.name, "plain_probe");
    expect(outcome).toBe("done");
    expect(during).toMatchObject({ paused: { status: 200 }, other: 200, record: "active" });
    expect(after).toMatchObject({ paused: { status: 200 }, record: "active" });
  });

  it("a flagged migration that fails releases the tenant too", async () => {
    const { outcome, during, after, pausedBy } = await runObserved(
      [...migrations, PAUSING, PLAIN, FAILING],
      FAILING.name,
      "failing_probe",
    );
    expect(outcome).toBe("failed");
    expect(during.paused).toMatchObject({ status: 503, code: "tenant_migrating" });
    expect(during.other).toBe(200);
    expect(after).toMatchObject({ paused: { status: 200 }, other: 200, record: "active" });
    expect(pausedBy).toBeNull();
    const [row] = await deps().db.select().from(tenants).where(eq(tenants.slug, PAUSED));
    expect(row?.schemaVersion).toBe(PLAIN.name);
    expect(LATEST).not.toBe(PLAIN.name);
  });

  it("cancelling a run releases a pause its dead consumer left", async () => {
    await waitForNoRunningRun();
    const runId = `run_test_${TAG}_dead`;
    await deps().db.insert(migrationRuns).values({
      id: runId,
      kind: "apply",
      target: PAUSING.name,
      status: "running",
      concurrency: 1,
      maxFailures: 0,
      phases: 1,
      createdBy: "test:fleet-pause",
    });
    // As withWritesPaused leaves it when the isolate dies before its `finally`.
    const [paused] = await deps()
      .db.update(tenants)
      .set({ writesPausedBy: runId })
      .where(eq(tenants.slug, PAUSED))
      .returning();
    if (paused) await projectTenant(deps(), paused);
    expect(await edge()).toMatchObject({ paused: { status: 503, code: "tenant_migrating" }, other: 200 });

    await cancelRun(deps(), runId);
    expect(await edge()).toMatchObject({ paused: { status: 200 }, other: 200, record: "active" });
    expect((await tenantRow(PAUSED)).writesPausedBy).toBeNull();
  });
});
