/**
 * Every fleet message may be delivered more than once, and two consumers may work on one tenant at
 * the same time: each migration must still be applied exactly once (ledger row and DDL in one batch
 * under an advisory lock). A migration applied twice would fail here: its DDL (ADD COLUMN, CREATE
 * INDEX) errors when the object exists, so "no failure and one ledger row each" means exactly once.
 *
 * The run's messages go to an in-memory list (deps `send`) rather than the queue, so each test
 * delivers them itself: twice in a row, twice at once, through the Worker's queue handler while a
 * direct consumer races it, and through the real miniflare queue.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type ApplyOutcome, applyTenant } from "../../src/control/fleet/consumer.ts";
import type { FleetDeps, MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns, runTenants, tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { migrateDatabase, rollbackMigrations } from "../../src/shared/migrations.ts";
import worker from "../../src/worker/index.ts";
import { controlDeps, migrationSql, sleep, startRunWhenFree, tenantRow } from "./support.ts";

const NAMES = migrations.map((m) => m.name);
const LATEST = NAMES.at(-1) as string;
const FIRST = NAMES[0] as string;
const TAG = `fi${Math.random().toString(36).slice(2, 6)}`;
const SLUGS = {
  sequential: `${TAG}-seq`,
  concurrent: `${TAG}-par`,
  handler: `${TAG}-handler`,
  queue: `${TAG}-queue`,
  database: `${TAG}-db`,
  late: `${TAG}-late`,
} as const;

const sent: MigrateMessage[] = [];
const alerts: Record<string, unknown>[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-idempotency"),
  send: async (messages) => {
    sent.push(...messages);
  },
  alert: async (payload) => {
    alerts.push(payload);
  },
});

async function ledger(slug: string): Promise<string[]> {
  const rows = await (await migrationSql(slug)).query("SELECT name FROM tenantry.migrations ORDER BY name");
  return rows.map((row) => (row as { name: string }).name);
}

/** The objects 0001–0003 add: present once each after a rollout. */
async function objects(slug: string) {
  const [row] = await (await migrationSql(slug)).query(
    `SELECT
       (SELECT count(*)::int FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'image_url') AS "imageUrl",
       (SELECT count(*)::int FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders' AND column_name = 'note') AS note,
       (SELECT count(*)::int FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'order_items_product_idx') AS "productIdx"`,
  );
  return row as { imageUrl: number; note: number; productIdx: number };
}

let runId: string;

async function message(slug: string): Promise<MigrateMessage> {
  const { id } = await tenantRow(slug);
  const found = sent.find((m) => m.runId === runId && m.tenantId === id);
  if (!found) throw new Error(`no message was dispatched for ${slug}`);
  return found;
}

async function runRow(slug: string) {
  const { id } = await tenantRow(slug);
  const [row] = await deps()
    .db.select()
    .from(runTenants)
    .where(and(eq(runTenants.runId, runId), eq(runTenants.tenantId, id)));
  return row;
}

const failures = (outcomes: readonly ApplyOutcome[]) => outcomes.filter((o) => o === "failed" || o === "drift");

describe("fleet: duplicate deliveries and racing consumers apply each migration exactly once", () => {
  beforeAll(async () => {
    const old = { ...deps(), tenantBundle: migrations.slice(0, 1) };
    await Promise.all(Object.values(SLUGS).map((slug) => createTenant(old, { slug, region: "local" })));
    // One run at a time: wait while another file's run is going.
    // Everything is queued at once (one phase, concurrency above the fleet's size).
    runId = (await startRunWhenFree(deps(), { concurrency: 250 })).id;
  }, 180_000);

  afterAll(async () => {
    // The other tenants' messages are never delivered here: stop the run so it blocks nobody.
    const [run] = runId ? await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId)) : [];
    if (run && run.status !== "completed" && run.status !== "cancelled") await cancelRun(deps(), runId);
  });

  it("dispatched one message per tenant, all at once", async () => {
    const ids = (
      await deps()
        .db.select()
        .from(tenants)
        .where(inArray(tenants.slug, Object.values(SLUGS)))
    ).map((t) => t.id);
    const mine = sent.filter((m) => m.runId === runId && ids.includes(m.tenantId));
    expect(mine).toHaveLength(ids.length);
    for (const slug of Object.values(SLUGS)) {
      expect(await ledger(slug)).toEqual([FIRST]);
      expect(await runRow(slug)).toMatchObject({ status: "queued", attempts: 0 });
    }
  });

  it("the same message delivered twice in a row: the second is acknowledged without work", async () => {
    const slug = SLUGS.sequential;
    const m = await message(slug);
    expect(await applyTenant(deps(), m)).toBe("done");
    const first = await runRow(slug);
    expect(await applyTenant(deps(), m)).toBe("skipped");
    const second = await runRow(slug);
    expect(second).toEqual(first);
    expect(second).toMatchObject({ status: "done", attempts: 1, error: null, fromVersion: FIRST, toVersion: LATEST });
    expect(second?.result).toEqual({ applied: NAMES.slice(1), dryRun: false });
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });
    expect((await tenantRow(slug)).schemaVersion).toBe(LATEST);
  });

  it("the same message delivered twice at once: both succeed, each migration applied once", async () => {
    const slug = SLUGS.concurrent;
    const m = await message(slug);
    const outcomes = await Promise.all([applyTenant(deps(), m), applyTenant(deps(), m)]);
    expect(failures(outcomes)).toEqual([]);
    expect(outcomes).toContain("done");
    expect(await runRow(slug)).toMatchObject({ status: "done", error: null, toVersion: LATEST });
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });
    expect((await tenantRow(slug)).schemaVersion).toBe(LATEST);
    // A later redelivery is a no-op.
    expect(await applyTenant(deps(), m)).toBe("skipped");
  });

  it("of two deliveries at once, the one that found nothing to do never overwrites what the other recorded", async () => {
    const slug = SLUGS.late;
    const m = await message(slug);
    // Hold the final write of the delivery that applied nothing until the other one has finished,
    // so it is the last to write: before, it replaced the applied list with an empty one.
    let held = false;
    let otherDone: () => void = () => {};
    const other = new Promise<void>((resolve) => {
      otherDone = resolve;
    });
    neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
      const body = String(init?.body ?? "");
      if (!held && body.includes('update \\"run_tenants\\" set \\"status\\"') && body.includes('\\"applied\\":[]')) {
        held = true;
        await other;
      }
      return fetch(input, init);
    };
    let outcomes: ApplyOutcome[];
    try {
      outcomes = await Promise.all(
        [0, 1].map((i) =>
          applyTenant(deps(), m).then(
            (outcome) => {
              if (outcome === "done") otherDone();
              return outcome;
            },
            (error: unknown) => {
              otherDone();
              throw new Error(`delivery ${i} failed: ${String(error)}`);
            },
          ),
        ),
      );
    } finally {
      otherDone();
      neonConfig.fetchFunction = undefined;
    }
    expect(held).toBe(true);
    expect(outcomes.sort()).toEqual(["done", "skipped"]);
    const row = await runRow(slug);
    expect(row).toMatchObject({ status: "done", error: null, toVersion: LATEST });
    expect(row?.result).toEqual({ applied: NAMES.slice(1), dryRun: false });
    expect(await ledger(slug)).toEqual(NAMES);
  });

  it("two consumers race on one tenant (the Worker's queue handler and another consumer)", async () => {
    const slug = SLUGS.handler;
    const m = await message(slug);
    const batch = createMessageBatch<MigrateMessage>("tenantry-fleet", [
      { id: "dup-1", timestamp: Date.now(), attempts: 1, body: m },
      { id: "dup-2", timestamp: Date.now(), attempts: 1, body: m },
    ]);
    const ctx = createExecutionContext();
    const [, direct] = await Promise.all([worker.queue(batch, env, ctx), applyTenant(deps(), m)]);
    const result = await getQueueResult(batch, ctx);
    // Every delivery is acknowledged: none asks the queue for a retry.
    expect([...result.explicitAcks].sort()).toEqual(["dup-1", "dup-2"]);
    expect(result.retryMessages).toEqual([]);
    expect(failures([direct])).toEqual([]);
    expect(await runRow(slug)).toMatchObject({ status: "done", error: null, toVersion: LATEST });
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });
  });

  it("a message sent twice through the real queue is consumed twice and applied once", async () => {
    const slug = SLUGS.queue;
    const m = await message(slug);
    // The miniflare queue calls this module's queue() handler: watch its deliveries go by.
    const spy = vi.spyOn(worker, "queue");
    try {
      await env.FLEET_QUEUE.sendBatch([
        { body: m, contentType: "json" },
        { body: m, contentType: "json" },
      ]);
      const deliveries = () =>
        spy.mock.calls.flatMap(([batch]) =>
          batch.messages.filter((msg) => JSON.stringify(msg.body) === JSON.stringify(m)),
        );
      const deadline = Date.now() + 20_000;
      while (deliveries().length < 2 && Date.now() < deadline) await sleep(100);
      expect(deliveries()).toHaveLength(2);
      // Wait for the handler invocations to finish their work.
      await Promise.all(spy.mock.results.map((r) => r.value));
    } finally {
      spy.mockRestore();
    }
    expect(await runRow(slug)).toMatchObject({ status: "done", error: null, toVersion: LATEST });
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });
  });

  it("migrateDatabase from two runs at once on the same database applies each migration once", async () => {
    const slug = SLUGS.database;
    const results = await Promise.all([
      migrateDatabase(await migrationSql(slug), migrations),
      migrateDatabase(await migrationSql(slug), migrations),
      migrateDatabase(await migrationSql(slug), migrations),
    ]);
    // Between them, every pending migration was applied by exactly one caller.
    expect(results.flatMap((r) => r.applied).sort()).toEqual(NAMES.slice(1));
    for (const r of results) {
      expect(r.version).toBe(LATEST);
      expect([...r.applied, ...r.alreadyApplied].sort()).toEqual(NAMES);
    }
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });

    // A rollback from a version older than the database's is refused, and changes nothing.
    await expect(rollbackMigrations(await migrationSql(slug), migrations, { steps: 1, from: FIRST })).rejects.toThrow(
      `the database has ${NAMES[1]} applied, newer than ${FIRST}`,
    );
    expect(await ledger(slug)).toEqual(NAMES);

    // The same holds for rolling back: two at once undo the latest migration once.
    const rolled = await Promise.all([
      rollbackMigrations(await migrationSql(slug), migrations, { steps: 1, from: LATEST }),
      rollbackMigrations(await migrationSql(slug), migrations, { steps: 1, from: LATEST }),
    ]);
    expect(rolled.flatMap((r) => r.rolledBack)).toEqual([LATEST]);
    expect(rolled.map((r) => r.version)).toEqual([NAMES.at(-2), NAMES.at(-2)]);
    expect(await ledger(slug)).toEqual(NAMES.slice(0, -1));
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 0 });
    // Delivered again after the first one finished, it is still a no-op: it does not undo the
    // migration below (it did, when a rollback meant "the latest `steps` in the ledger now").
    const late = await rollbackMigrations(await migrationSql(slug), migrations, { steps: 1, from: LATEST });
    expect(late).toEqual({ rolledBack: [], version: NAMES.at(-2), drops: [] });
    expect(await ledger(slug)).toEqual(NAMES.slice(0, -1));

    // And re-applying after it brings back just that one.
    const again = await Promise.all([
      migrateDatabase(await migrationSql(slug), migrations),
      migrateDatabase(await migrationSql(slug), migrations),
    ]);
    expect(again.flatMap((r) => r.applied)).toEqual([LATEST]);
    expect(await ledger(slug)).toEqual(NAMES);
    expect(await objects(slug)).toEqual({ imageUrl: 1, note: 1, productIdx: 1 });
  });

  it("raised no alert for any of these tenants", async () => {
    const ids = (
      await deps()
        .db.select()
        .from(tenants)
        .where(inArray(tenants.slug, Object.values(SLUGS)))
    ).map((t) => t.id);
    expect(alerts.filter((a) => ids.includes(String(a.tenantId)))).toEqual([]);
  });
});
