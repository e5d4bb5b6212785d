/**
 * migrateDatabase against a real database through the gateway: the round trips it takes (two when
 * every pending migration applies together) and what a failing migration leaves behind (the ones
 * before it applied, its own error thrown, nothing after it), exactly as one batch per migration.
 */
import { NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { gatewayFetch } from "../../../src/dev/gateway/node-fetch.ts";
import { migrations } from "../../../src/generated/migrations.ts";
import {
  type Migration,
  MigrationDriftError,
  MigrationFailedError,
  migrateDatabase,
  planRollback,
  rollbackMigrations,
} from "../../../src/shared/migrations.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, superuser, type TestDatabase } from "../support.ts";

const NAMES = migrations.map((m) => m.name);
const created: TestDatabase[] = [];
/** SQL texts sent to the gateway, one entry per HTTP request. */
let requests: string[][] = [];

beforeAll(() => {
  neonConfig.fetchEndpoint = gatewayUrl();
  neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body ?? "{}")) as { query?: string; queries?: { query: string }[] };
    requests.push(body.queries ? body.queries.map((q) => q.query) : [String(body.query)]);
    return gatewayFetch(input, init);
  };
});
afterEach(() => {
  requests = [];
});
afterAll(async () => {
  neonConfig.fetchFunction = undefined;
  for (const db of created) await dropTestDatabase(db);
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase("migrate");
  created.push(db);
  return db;
}

async function ledger(db: TestDatabase): Promise<string[]> {
  return superuser(async (client) => {
    const exists = await client.query("SELECT to_regclass('tenantry.migrations') IS NOT NULL AS present");
    if (!exists.rows[0]?.present) return [];
    const { rows } = await client.query<{ name: string }>("SELECT name FROM tenantry.migrations ORDER BY name");
    return rows.map((row) => row.name);
  }, db.name);
}

async function tables(db: TestDatabase): Promise<string[]> {
  return superuser(async (client) => {
    const { rows } = await client.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    return rows.map((row) => row.name);
  }, db.name);
}

const migration = (name: string, ...statements: string[]): Migration => ({
  name,
  checksum: `sum-${name}`,
  statements,
  down: null,
});

describe("migrateDatabase", () => {
  it("brings a fresh database to the latest version in two requests, then is a one-request no-op", async () => {
    const db = await database();
    const first = await migrateDatabase(neon(db.url), migrations);
    expect(first).toEqual({ applied: NAMES, alreadyApplied: [], version: NAMES.at(-1) });
    expect(requests).toHaveLength(2);
    // The second request is one transaction: the lock, then every migration's ledger row and DDL.
    // The lock and statement timeouts first (migration-locks.ts), then the advisory lock.
    expect(requests[1]?.slice(0, 3)).toEqual([
      "SET LOCAL lock_timeout = 2000",
      "SET LOCAL statement_timeout = 120000",
      expect.stringMatching(/pg_advisory_xact_lock/),
    ]);
    expect(requests[1]?.filter((q) => q.startsWith("INSERT INTO tenantry.migrations"))).toHaveLength(NAMES.length);
    expect(await ledger(db)).toEqual(NAMES);

    requests = [];
    const again = await migrateDatabase(neon(db.url), migrations);
    expect(again).toEqual({ applied: [], alreadyApplied: NAMES, version: NAMES.at(-1) });
    expect(requests).toHaveLength(1);
  });

  it("stops at a target, and applies a single pending migration in its own batch", async () => {
    const db = await database();
    const target = NAMES[1] as string;
    const first = await migrateDatabase(neon(db.url), migrations, target);
    expect(first.applied).toEqual(NAMES.slice(0, 2));
    expect(await ledger(db)).toEqual(NAMES.slice(0, 2));
    requests = [];
    const next = await migrateDatabase(neon(db.url), migrations.slice(0, 3));
    expect(next.applied).toEqual([NAMES[2]]);
    expect(requests).toHaveLength(2);
    await expect(migrateDatabase(neon(db.url), migrations, "9999_nope")).rejects.toThrow(/unknown target/);
  });

  it("a failing migration: the ones before it land, its own error is thrown, nothing after it runs", async () => {
    const db = await database();
    const bundle = [
      migration("0000_a", "CREATE TABLE a (id int)"),
      migration("0001_b", "CREATE TABLE b (id int)"),
      migration("0002_conflict", "CREATE TABLE c (id int)", "CREATE TABLE a (id int)"),
      migration("0003_d", "CREATE TABLE d (id int)"),
    ];
    const failure = await migrateDatabase(neon(db.url), bundle).catch((error: unknown) => error);
    // Named, with the database's own code and message; the driver's error is its cause.
    expect(failure).toBeInstanceOf(MigrationFailedError);
    expect(failure).toMatchObject({ migration: "0002_conflict", code: "42P07" }); // duplicate_table
    expect((failure as Error).message).toBe('relation "a" already exists');
    expect((failure as Error).cause).toBeInstanceOf(NeonDbError);
    expect(await ledger(db)).toEqual(["0000_a", "0001_b"]);
    // The conflicting migration's first statement was rolled back with it; d never ran.
    expect(await tables(db)).toEqual(["a", "b"]);

    // Fixed in the bundle, the next run applies the rest.
    const fixed = [
      ...bundle.slice(0, 2),
      migration("0002_conflict", "CREATE TABLE c (id int)"),
      bundle[3] as Migration,
    ];
    const result = await migrateDatabase(neon(db.url), fixed);
    expect(result.applied).toEqual(["0002_conflict", "0003_d"]);
    expect(await tables(db)).toEqual(["a", "b", "c", "d"]);
  });

  it("drift stops before anything is applied", async () => {
    const db = await database();
    await migrateDatabase(neon(db.url), migrations.slice(0, 1));
    const drifted = [{ ...(migrations[0] as Migration), checksum: "changed" }, ...migrations.slice(1)];
    await expect(migrateDatabase(neon(db.url), drifted)).rejects.toBeInstanceOf(MigrationDriftError);
    expect(await ledger(db)).toEqual(NAMES.slice(0, 1));
  });
});

describe("rollbackMigrations", () => {
  const applied = (...names: string[]) =>
    names.map((name) => ({ name, checksum: (migrations.find((m) => m.name === name) as Migration).checksum }));
  const plan = (rows: ReturnType<typeof applied>, steps: number, from: string | null) =>
    planRollback(migrations, rows, steps, from).map((m) => m.name);
  const [m0, m1, m2, m3] = NAMES as [string, string, string, string];

  it("plans the `steps` migrations ending at `from`, less those already undone", () => {
    expect(plan(applied(m0, m1, m2, m3), 2, m3)).toEqual([m3, m2]);
    // Resumed after undoing m3: only m2 is left to undo, not m1 as well.
    expect(plan(applied(m0, m1, m2), 2, m3)).toEqual([m2]);
    // Both gone: nothing to do.
    expect(plan(applied(m0, m1), 2, m3)).toEqual([]);
    expect(plan(applied(m0, m1, m2, m3), 3, m3)).toEqual([m3, m2, m1]);
    expect(plan(applied(m1, m2, m3), 10, m3)).toEqual([m3, m2, m1]);
    expect(plan([], 1, null)).toEqual([]);
  });

  it("refuses a version older than the database's, an unknown version, bad steps, and a missing down file", () => {
    expect(() => plan(applied(m0, m1, m2, m3), 1, m2)).toThrow(`the database has ${m3} applied, newer than ${m2}`);
    expect(() => plan(applied(m0), 1, null)).toThrow(`the database has ${m0} applied, newer than none`);
    expect(() => plan(applied(m0), 1, "9999_nope")).toThrow("migration 9999_nope is not in the bundle");
    expect(() => plan(applied(m0), 0, m0)).toThrow("steps must be a positive integer");
    expect(() => plan(applied(m0), 1.5, m0)).toThrow("steps must be a positive integer");
    // 0000 has no down file: undoing it is refused, but only when it is still applied.
    expect(() => plan(applied(m0, m1), 2, m1)).toThrow(`migration ${m0} has no down file`);
  });

  it("a rollback repeated after it finished, or resumed half done, undoes each migration once", async () => {
    const db = await database();
    await migrateDatabase(neon(db.url), migrations);
    const first = await rollbackMigrations(neon(db.url), migrations, { steps: 1, from: m3 });
    // Dropping an index loses no data: nothing is listed as dropped.
    expect(first).toEqual({ rolledBack: [m3], version: m2, drops: [] });
    expect(await rollbackMigrations(neon(db.url), migrations, { steps: 1, from: m3 })).toEqual({
      rolledBack: [],
      version: m2,
      drops: [],
    });
    expect(await ledger(db)).toEqual([m0, m1, m2]);
    // A two-step rollback from m3, resumed after its first step: it finishes with m2 alone.
    expect(await rollbackMigrations(neon(db.url), migrations, { steps: 2, from: m3 })).toEqual({
      rolledBack: [m2],
      version: m1,
      drops: [{ migration: m2, kind: "column", object: "orders.note" }],
    });
    expect(await ledger(db)).toEqual([m0, m1]);
    // A dry run reports and changes nothing.
    expect(await rollbackMigrations(neon(db.url), migrations, { steps: 1, from: m1, dryRun: true })).toEqual({
      rolledBack: [m1],
      version: m0,
      drops: [{ migration: m1, kind: "column", object: "products.image_url" }],
    });
    expect(await ledger(db)).toEqual([m0, m1]);
  });
});
