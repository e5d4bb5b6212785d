/**
 * The gateway's connection limits, idle eviction and graceful shutdown, each on a dedicated
 * gateway with small limits in front of the shared test Postgres. No timing assertions: limits are
 * observed through HTTP statuses, `stats()` and `pg_stat_activity`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PoolManager } from "../../../src/dev/gateway/pools.ts";
import { parseConnectionString } from "../../../src/dev/gateway/protocol.ts";
import { type Gateway, type GatewayOptions, startGateway } from "../../../src/dev/gateway/server.ts";
import { createTestDatabase, dropTestDatabase, superuser, type TestDatabase } from "../support.ts";

let dbs: TestDatabase[] = [];
const gateways: Gateway[] = [];

beforeAll(async () => {
  dbs = await Promise.all([createTestDatabase("pools"), createTestDatabase("pools"), createTestDatabase("pools")]);
});

afterAll(async () => {
  await Promise.all(dbs.map(dropTestDatabase));
});

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});

function database(index: number): TestDatabase {
  const db = dbs[index];
  if (!db) throw new Error(`no test database ${index}`);
  return db;
}

async function gatewayWith(options: GatewayOptions): Promise<Gateway> {
  const gateway = await startGateway({ port: 0, ...options });
  gateways.push(gateway);
  return gateway;
}

interface Answer {
  readonly status: number;
  readonly body: { rows?: Record<string, unknown>[]; code?: string; message?: string };
}

async function query(gateway: Gateway, db: TestDatabase, sql: string): Promise<Answer> {
  const response = await fetch(gateway.url, {
    method: "POST",
    headers: { "Neon-Connection-String": db.url },
    body: JSON.stringify({ query: sql, params: [] }),
  });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

/** Connections the gateway holds to `db`, as Postgres sees them. */
async function gatewayConnections(db: TestDatabase): Promise<number> {
  return superuser(async (client) => {
    const result = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tenantry-gateway'",
      [db.name],
    );
    return result.rows[0]?.n ?? 0;
  });
}

describe("global connection budget", () => {
  it("answers 503 to the request that finds the budget spent, and 200 to the others", async () => {
    const gateway = await gatewayWith({ maxTotal: 2, maxPerPool: 5, acquireTimeoutMs: 500 });
    // Each sleep holds its connection well past the acquire timeout, so the third request cannot
    // get a slot in time whatever the order of arrival.
    const answers = await Promise.all(
      [0, 1, 2].map((index) => query(gateway, database(index), "SELECT pg_sleep(1.5)::text AS slept")),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([200, 200, 503]);
    const refused = answers.find((answer) => answer.status === 503);
    expect(refused?.body.code).toBe("53300");
    expect(refused?.body.message).toContain("budget");
    for (const answer of answers.filter((each) => each.status === 200)) {
      expect(answer.body.rows).toEqual([{ slept: "" }]);
    }
    expect(gateway.stats().open).toBeLessThanOrEqual(2);

    // The budget is free again: the refused database is served now.
    const refusedIndex = answers.findIndex((answer) => answer.status === 503);
    const retry = await query(gateway, database(refusedIndex), "SELECT current_database() AS d");
    expect(retry.status).toBe(200);
    expect(retry.body.rows).toEqual([{ d: database(refusedIndex).name }]);
    expect(gateway.stats().open).toBeLessThanOrEqual(2);
  });
});

describe("per-pool bound", () => {
  it("queues a second request for the same database on the one connection allowed", async () => {
    const db = database(0);
    const gateway = await gatewayWith({ maxPerPool: 1, acquireTimeoutMs: 10_000 });
    let done = false;
    const samples: { server: number; open: number; active: number }[] = [];
    const sampler = (async () => {
      while (!done) {
        samples.push({ server: await gatewayConnections(db), ...gateway.stats() });
        await sleep(10);
      }
    })();
    try {
      const answers = await Promise.all([
        query(gateway, db, "SELECT pg_backend_pid() AS pid, pg_sleep(0.3)::text AS slept"),
        query(gateway, db, "SELECT pg_backend_pid() AS pid, pg_sleep(0.3)::text AS slept"),
      ]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      // Both ran on the same backend, one after the other.
      const [first, second] = answers.map((answer) => answer.body.rows?.[0]?.pid);
      expect(first).toBeTypeOf("number");
      expect(second).toBe(first);
    } finally {
      done = true;
      await sampler;
    }
    expect(samples.length).toBeGreaterThan(0);
    expect(Math.max(...samples.map((sample) => sample.server))).toBe(1);
    expect(Math.max(...samples.map((sample) => sample.open))).toBe(1);
    // At some point both requests were on the pool: one running, one waiting for the slot.
    expect(Math.max(...samples.map((sample) => sample.active))).toBe(2);
  });
});

describe("idle eviction", () => {
  it("closes an unused pool and its connections, and reopens it on demand", async () => {
    const db = database(1);
    const gateway = await gatewayWith({ idleMs: 200 });
    const first = await query(gateway, db, "SELECT 1 AS one");
    expect(first.status).toBe(200);
    expect(gateway.stats()).toMatchObject({ pools: 1, open: 1, active: 0 });

    await sleep(700);
    await vi.waitFor(() => expect(gateway.stats()).toMatchObject({ pools: 0, open: 0, active: 0 }), {
      timeout: 5_000,
      interval: 50,
    });
    await vi.waitFor(async () => expect(await gatewayConnections(db)).toBe(0), { timeout: 5_000, interval: 50 });

    const again = await query(gateway, db, "SELECT 2 AS two");
    expect(again.status).toBe(200);
    expect(again.body.rows).toEqual([{ two: 2 }]);
    expect(gateway.stats()).toMatchObject({ pools: 1, open: 1 });
  });
});

describe("graceful shutdown", () => {
  it("lets an in-flight query finish, then refuses new connections", async () => {
    const db = database(2);
    const gateway = await gatewayWith({});
    const inFlight = query(gateway, db, "SELECT pg_sleep(0.5)::text AS slept, 1 AS one");
    await vi.waitFor(() => expect(gateway.stats().inFlight).toBe(1), { timeout: 5_000, interval: 5 });

    const closing = gateway.close();
    // The listening socket is closed at once: a new connection is refused while the query drains.
    await expect(query(gateway, db, "SELECT 1")).rejects.toThrow();

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.body.rows).toEqual([{ slept: "", one: 1 }]);
    await closing;

    expect(gateway.stats()).toMatchObject({ inFlight: 0, pools: 0 });
    await expect(query(gateway, db, "SELECT 1")).rejects.toThrow();
    await vi.waitFor(async () => expect(await gatewayConnections(db)).toBe(0), { timeout: 5_000, interval: 50 });
  });
});

describe("isPostgresError", () => {
  it("recognises errors Postgres reported, not Node system errors with five-letter codes", async () => {
    const { isPostgresError } = await import("../../../src/dev/gateway/pools.ts");
    const pgModule = await import("pg");
    const reported = new pgModule.default.DatabaseError("duplicate key", 0, "error");
    reported.code = "23505";
    expect(isPostgresError(reported)).toBe(true);
    // EPIPE matches /^[0-9A-Z]{5}$/ too: it must count as a broken connection, not a 400.
    expect(isPostgresError(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).toBe(false);
    expect(isPostgresError(Object.assign(new Error("x"), { code: "EPERM" }))).toBe(false);
  });
});

describe("a connection that dies between queries", () => {
  it("leaves the pool at once, without crashing the process, and the next query gets a fresh one", async () => {
    const db = database(1);
    const pools = new PoolManager({ maxPerPool: 1, maxTotal: 5, idleMs: 60_000, acquireTimeoutMs: 5_000 });
    const target = parseConnectionString({ "neon-connection-string": db.url });
    try {
      const first = await pools.query(target, "SELECT pg_backend_pid()", []);
      const killed = Number(first.rows[0]?.[0]);
      expect(pools.stats()).toMatchObject({ open: 1, active: 0 });
      // Between two queries, as a DROP DATABASE ... WITH (FORCE) does it: no query is there to
      // take the error.
      await superuser((admin) => admin.query("SELECT pg_terminate_backend($1)", [killed]));
      await vi.waitFor(() => expect(pools.stats().open).toBe(0), { timeout: 5_000, interval: 10 });
      const again = await pools.query(target, "SELECT pg_backend_pid()", []);
      expect(Number(again.rows[0]?.[0])).not.toBe(killed);
      expect(pools.stats()).toMatchObject({ open: 1, active: 0 });
    } finally {
      await pools.close();
    }
  });
});
