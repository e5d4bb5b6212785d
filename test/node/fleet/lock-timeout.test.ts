/**
 * DDL under traffic: a migration whose ALTER TABLE cannot take its lock behind a long transaction
 * gives up after its lock_timeout (55P03) and is retried with backoff, so the SELECTs and INSERTs
 * arriving meanwhile are not stuck behind it; it lands once the long transaction ends. Without a
 * short lock timeout the same INSERT is seen waiting behind the DDL (the control case), which is
 * what the first test would catch if the timeouts were missing.
 */
import { neon } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrations } from "../../../src/generated/migrations.ts";
import { type Migration, MigrationFailedError, migrateDatabase } from "../../../src/shared/migrations.ts";
import { createTestDatabase, dropTestDatabase, superuser, type TestDatabase, useGatewayForNeon } from "../support.ts";

const PROBE: Migration = {
  name: "9001_lock_probe",
  checksum: "sum-9001",
  statements: ['ALTER TABLE "products" ADD COLUMN "lock_probe" text'],
  down: null,
};
const BUNDLE = [...migrations, PROBE];
const created: TestDatabase[] = [];
const clients: pg.Client[] = [];

beforeAll(() => {
  useGatewayForNeon();
});
afterAll(async () => {
  for (const client of clients) await client.end().catch(() => undefined);
  for (const db of created) await dropTestDatabase(db);
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds (no timing assertion: the test's own timeout is the bound). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await sleep(20);
}

/** A database at the bundle's latest real migration, and a session holding a long transaction on products. */
async function blockedDatabase(): Promise<{ db: TestDatabase; blocker: pg.Client }> {
  const db = await createTestDatabase("locks");
  created.push(db);
  await migrateDatabase(neon(db.url), migrations);
  const blocker = new pg.Client({ connectionString: db.url });
  clients.push(blocker);
  await blocker.connect();
  // A long read transaction: its ACCESS SHARE lock on products lasts until COMMIT.
  await blocker.query("BEGIN");
  await blocker.query("SELECT count(*) FROM products");
  return { db, blocker };
}

/** Sessions of `db` waiting for a lock on a statement starting with `prefix`. */
async function waitingOnLock(db: TestDatabase, prefix: string): Promise<number> {
  return superuser(async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = $1 AND wait_event_type = 'Lock' AND query ILIKE $2`,
      [db.name, `${prefix}%`],
    );
    return rows[0]?.n ?? 0;
  });
}

async function hasProbeColumn(db: TestDatabase): Promise<boolean> {
  const [row] = await neon(db.url).query(
    "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'products' AND column_name = 'lock_probe') AS present",
  );
  return Boolean((row as { present: boolean }).present);
}

/** The tenant's traffic: its own session, as each request has its own connection on Neon. */
async function session(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  clients.push(client);
  await client.connect();
  return client;
}

async function insertProduct(db: TestDatabase, sku: string): Promise<unknown[]> {
  const client = await session(db);
  const { rows } = await client.query(
    "INSERT INTO products (sku, name, price_cents) VALUES ($1, 'probe', 100) RETURNING sku",
    [sku],
  );
  return rows;
}

describe("migrations under a long transaction", () => {
  it("time out on their lock and retry while traffic on the table goes through, then land", async () => {
    const { db, blocker } = await blockedDatabase();
    let retries = 0;
    let settled = false;
    const migration = migrateDatabase(neon(db.url), BUNDLE, undefined, {
      lock: { lockTimeoutMs: 300, retries: 10_000, backoffMs: 20, maxBackoffMs: 100, onRetry: () => retries++ },
    }).finally(() => {
      settled = true;
    });
    // The ALTER is at the head of the lock queue: an INSERT sent now queues behind it...
    await until(async () => (await waitingOnLock(db, "ALTER TABLE")) > 0);
    const inserted = await insertProduct(db, "during-ddl");
    // ...and still completes while the long transaction holds on: the ALTER gave way.
    expect(inserted).toEqual([{ sku: "during-ddl" }]);
    const { rows: read } = await (await session(db)).query(
      "SELECT count(*)::int AS n FROM products WHERE sku = 'during-ddl'",
    );
    expect(read).toEqual([{ n: 1 }]);
    await until(() => retries > 0);
    expect(settled).toBe(false);
    expect(await hasProbeColumn(db)).toBe(false);

    await blocker.query("COMMIT");
    const result = await migration;
    expect(result.applied).toEqual([PROBE.name]);
    expect(await hasProbeColumn(db)).toBe(true);
    expect(retries).toBeGreaterThan(0);
  });

  it("without a short lock timeout, the same INSERT waits behind the DDL (control case)", async () => {
    const { db, blocker } = await blockedDatabase();
    const migration = migrateDatabase(neon(db.url), BUNDLE, undefined, { lock: { lockTimeoutMs: 600_000 } });
    await until(async () => (await waitingOnLock(db, "ALTER TABLE")) > 0);
    const insert = insertProduct(db, "stalled");
    await until(async () => (await waitingOnLock(db, "INSERT INTO products")) > 0);
    await blocker.query("COMMIT");
    expect(await insert).toEqual([{ sku: "stalled" }]);
    expect((await migration).applied).toEqual([PROBE.name]);
  });

  it("gives up after its retries with the lock error, leaving nothing applied", async () => {
    const { db, blocker } = await blockedDatabase();
    let retries = 0;
    const error = await migrateDatabase(neon(db.url), BUNDLE, undefined, {
      lock: { lockTimeoutMs: 100, retries: 2, backoffMs: 10, maxBackoffMs: 20, onRetry: () => retries++ },
    }).catch((caught: unknown) => caught);
    await blocker.query("COMMIT");
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect((error as MigrationFailedError).code).toBe("55P03");
    expect((error as MigrationFailedError).migration).toBe(PROBE.name);
    expect(retries).toBe(2);
    expect(await hasProbeColumn(db)).toBe(false);
    const ledger = await neon(db.url).query("SELECT name FROM tenantry.migrations WHERE name = $1", [PROBE.name]);
    expect(ledger).toEqual([]);
  });

  it("bounds each statement with statement_timeout", async () => {
    const db = await createTestDatabase("locks");
    created.push(db);
    const slow: Migration = {
      name: "9002_slow",
      checksum: "sum-9002",
      statements: ["SELECT pg_sleep(30)"],
      down: null,
    };
    const error = await migrateDatabase(neon(db.url), [slow], undefined, { lock: { statementTimeoutMs: 200 } }).catch(
      (caught: unknown) => caught,
    );
    expect((error as MigrationFailedError).code).toBe("57014");
  });
});
