/**
 * The gateway's pipelined Postgres client (pools.ts, pg-wire.ts): queries of one moment share a
 * connection, yet each stays its own transaction with its own error, a slow query holds up only
 * what was sent right beside it, and COPY input never reaches a neighbour. Observed through results,
 * backend pids, `stats()` and promise states; no timing assertions.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { md5Password, scramContinue, scramFinish, scramStart } from "../../../src/dev/gateway/pg-auth.ts";
import { PoolManager } from "../../../src/dev/gateway/pools.ts";
import { parseConnectionString, type Target } from "../../../src/dev/gateway/protocol.ts";
import { createTestDatabase, dropTestDatabase, superuser, type TestDatabase } from "../support.ts";

let db: TestDatabase;
let target: Target;
const managers: PoolManager[] = [];

beforeAll(async () => {
  db = await createTestDatabase("pipeline");
  target = parseConnectionString({ "neon-connection-string": db.url });
  const setup = new PoolManager({ maxPerPool: 1, maxTotal: 1, idleMs: 60_000, acquireTimeoutMs: 10_000 });
  await setup.query(target, "CREATE TABLE seen (id int PRIMARY KEY, note text NOT NULL)", []);
  await setup.close();
});

afterAll(async () => {
  await dropTestDatabase(db);
});

afterEach(async () => {
  await Promise.all(managers.splice(0).map((manager) => manager.close()));
});

function manager(maxPerPool = 10): PoolManager {
  const pools = new PoolManager({ maxPerPool, maxTotal: 20, idleMs: 60_000, acquireTimeoutMs: 10_000 });
  managers.push(pools);
  return pools;
}

const pid = (rows: readonly (readonly (string | null)[])[]) => Number(rows[0]?.[0]);

/** Whether `promise` has settled by the time the event loop has turned over a few times. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await sleep(20);
  return done;
}

describe("queries sent together", () => {
  it("share connections: eight at once need fewer than eight backends", async () => {
    const pools = manager();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, index) => pools.query(target, "SELECT pg_backend_pid(), $1::int", [index])),
    );
    expect(answers.map((answer) => Number(answer.rows[0]?.[1]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const backends = new Set(answers.map((answer) => pid(answer.rows)));
    expect(backends.size).toBeLessThan(8);
    expect(pools.stats().open).toBe(backends.size);
  });

  it("keep their own transactions: a failing neighbour rolls back only itself", async () => {
    const pools = manager(1);
    const [first, failing, third] = await Promise.allSettled([
      pools.query(target, "INSERT INTO seen VALUES (1, 'first') RETURNING id", []),
      pools.query(target, "INSERT INTO seen VALUES (2, 'failing'), (2, 'duplicate')", []),
      pools.query(target, "INSERT INTO seen VALUES (3, 'third') RETURNING id", []),
    ]);
    expect(first).toMatchObject({ status: "fulfilled", value: { command: "INSERT", rowCount: 1, rows: [["1"]] } });
    expect(failing).toMatchObject({ status: "rejected", reason: { code: "23505" } });
    expect(third).toMatchObject({ status: "fulfilled", value: { command: "INSERT", rowCount: 1, rows: [["3"]] } });
    const rows = await pools.query(target, "SELECT id FROM seen ORDER BY id", []);
    expect(rows.rows).toEqual([["1"], ["3"]]);
  });

  it("answer in order with their own fields, rows and command tags", async () => {
    const pools = manager(1);
    const [select, empty, update, ddl] = await Promise.all([
      pools.query(target, "SELECT 'a'::text AS letter, NULL::int AS nothing", []),
      pools.query(target, "SELECT 1 WHERE false", []),
      pools.query(target, "UPDATE seen SET note = note WHERE id > $1", [0]),
      pools.query(target, "CREATE TEMP TABLE scratch (x int)", []),
    ]);
    expect(select.rows).toEqual([["a", null]]);
    expect(select.fields.map((field) => [field.name, field.dataTypeID])).toEqual([
      ["letter", 25],
      ["nothing", 23],
    ]);
    expect(empty).toMatchObject({ command: "SELECT", rowCount: 0, rows: [] });
    expect(update.command).toBe("UPDATE");
    expect(update.rowCount).toBeGreaterThanOrEqual(0);
    expect(ddl).toMatchObject({ command: "CREATE", rowCount: null, rows: [], fields: [] });
  });
});

describe("a slow query", () => {
  it("does not hold up a query sent once it is running: that one gets another backend", async () => {
    const pools = manager(2);
    const slow = pools.query(target, "SELECT pg_backend_pid(), pg_sleep(2)", []);
    await vi.waitFor(
      async () => {
        const running = await superuser((client) =>
          client.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(2)%'", [db.name]),
        );
        expect(running.rowCount).toBe(1);
      },
      { timeout: 5_000, interval: 10 },
    );
    const quick = pools.query(target, "SELECT pg_backend_pid()", []);
    const answer = await quick;
    // The quick query came back while the slow one was still running, from another backend.
    expect(await settled(slow)).toBe(false);
    const slowAnswer = await slow;
    expect(pid(answer.rows)).not.toBe(pid(slowAnswer.rows));
  });
});

describe("COPY FROM STDIN over HTTP", () => {
  it("fails alone, on a connection of its own, and the queries beside it succeed", async () => {
    const pools = manager(1);
    const copy = pools
      .exclusive(target, (session) => session.query("COPY seen FROM STDIN", []))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const [before, after] = await Promise.all([
      pools.query(target, "SELECT count(*) FROM seen", []),
      pools.query(target, "SELECT 42", []),
    ]);
    expect(await copy).toMatchObject({ code: "57014", message: expect.stringContaining("No source stream defined") });
    expect(Number(before.rows[0]?.[0])).toBeGreaterThanOrEqual(0);
    expect(after.rows).toEqual([["42"]]);
  });
});

describe("authentication", () => {
  it("answers MD5 challenges as Postgres computes them", async () => {
    const expected = await superuser(async (client) => {
      const result = await client.query<{ hash: string }>(
        "SELECT 'md5' || md5(md5('s3cret' || 'alice') || 'salt') AS hash",
      );
      return result.rows[0]?.hash;
    });
    expect(md5Password("alice", "s3cret", Buffer.from("salt"))).toBe(expected);
  });

  it("refuses a SCRAM server that cannot prove it knows the password", () => {
    const session = scramStart(["SCRAM-SHA-256"]);
    const proof = scramContinue(session, "pw", `r=${session.clientNonce}server,s=${btoa("salt")},i=4096`);
    expect(() => scramFinish(proof, "v=bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ==")).toThrow(/signature/);
    expect(() => scramFinish(proof, `v=${proof.serverSignature}`)).not.toThrow();
    expect(() => scramStart(["SCRAM-SHA-256-PLUS"])).toThrow(/SCRAM-SHA-256/);
  });

  it("reports a wrong password as Postgres' own error", async () => {
    const pools = manager();
    const wrong = parseConnectionString({ "neon-connection-string": db.url.replace(/:[^:@/]+@/, ":wrong@") });
    await expect(pools.query(wrong, "SELECT 1", [])).rejects.toMatchObject({ code: "28P01" });
    expect(pools.stats().open).toBe(0);
  });
});
