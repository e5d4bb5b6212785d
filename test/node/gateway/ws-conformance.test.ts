/**
 * The gateway's WebSocket endpoint driven by the real driver's `Pool` and `Client` against real
 * Postgres: sessions, interactive transactions, errors, COPY both ways, a backend killed under
 * the client, and many sessions at once.
 */
import { Client, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, superuser, type TestDatabase } from "../support.ts";
import { copyIn, copyOut, useGatewayWebSockets } from "./ws-support.ts";

let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  useGatewayWebSockets();
  db = await createTestDatabase("wsconf");
  pool = new Pool({ connectionString: db.url, max: 4 });
  await pool.query("CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0))");
  await pool.query("CREATE TABLE lines (id int PRIMARY KEY, body text NOT NULL)");
  await pool.query("INSERT INTO stock VALUES ('A', 1), ('B', 5)");
});

afterAll(async () => {
  await pool?.end();
  await dropTestDatabase(db);
});

async function isWaitingOnLock(pid: number): Promise<boolean> {
  return superuser(async (client) => {
    const { rows } = await client.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [pid]);
    return rows[0]?.wait_event_type === "Lock";
  });
}

describe("interactive transactions over /v2", () => {
  it("makes a second SELECT … FOR UPDATE wait until the first transaction commits", async () => {
    const first = new Client(db.url);
    const second = new Client(db.url);
    await first.connect();
    await second.connect();
    try {
      await first.query("BEGIN");
      const { rows } = await first.query("SELECT qty FROM stock WHERE sku = 'A' FOR UPDATE");
      expect(rows).toEqual([{ qty: 1 }]);

      await second.query("BEGIN");
      const secondPid = (await second.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
      let secondDone = false;
      const contended = second.query("SELECT qty FROM stock WHERE sku = 'A' FOR UPDATE").then((result) => {
        secondDone = true;
        return result;
      });
      await expect.poll(() => isWaitingOnLock(secondPid), { timeout: 5_000 }).toBe(true);
      expect(secondDone).toBe(false);

      // The first client decides on what it read, then commits: the second sees the decision.
      await first.query("UPDATE stock SET qty = qty - 1 WHERE sku = 'A'");
      await first.query("COMMIT");
      expect((await contended).rows).toEqual([{ qty: 0 }]);
      await second.query("COMMIT");
    } finally {
      await first.end();
      await second.end();
    }
  });

  it("leaves nothing behind after a rollback", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO lines VALUES (1, 'gone')");
      await client.query("UPDATE stock SET qty = 99 WHERE sku = 'B'");
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    expect((await pool.query("SELECT count(*)::int AS n FROM lines")).rows).toEqual([{ n: 0 }]);
    expect((await pool.query("SELECT qty FROM stock WHERE sku = 'B'")).rows).toEqual([{ qty: 5 }]);
  });

  it("reports an error mid-transaction, refuses further statements, and recovers after ROLLBACK", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO lines VALUES (2, 'kept until the error')");
      await expect(client.query("INSERT INTO lines VALUES (2, 'duplicate')")).rejects.toMatchObject({
        code: "23505",
        constraint: "lines_pkey",
      });
      await expect(client.query("SELECT 1")).rejects.toMatchObject({ code: "25P02" });
      await client.query("ROLLBACK");
      expect((await client.query("SELECT count(*)::int AS n FROM lines")).rows).toEqual([{ n: 0 }]);
    } finally {
      client.release();
    }
  });
});

/** Text that COPY's text format must escape: tabs, newlines, backslashes, `\N`, `\.`, non-ASCII. */
function trickyLine(index: number): string {
  return `row ${index}\ttab\nnew line\\back\\slash \\N \\. 'q' "dq" héllo 🌍 ${"x".repeat(index % 50)}`;
}

function escapeCopyText(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}

describe("COPY over /v2", () => {
  const ROWS = 10_000;
  const copyText = Array.from({ length: ROWS }, (_, i) => `${i + 1}\t${escapeCopyText(trickyLine(i + 1))}\n`).join("");

  it("copies 10,000 rows in with FROM STDIN and back out with TO STDOUT, byte for byte", async () => {
    const client = await pool.connect();
    try {
      await client.query("CREATE TABLE copied (id int PRIMARY KEY, body text NOT NULL)");
      await copyIn(client, "COPY copied (id, body) FROM STDIN", Buffer.from(copyText));
      const { rows } = await client.query("SELECT count(*)::int AS n, max(id) AS top FROM copied");
      expect(rows).toEqual([{ n: ROWS, top: ROWS }]);
      const sample = await client.query("SELECT body FROM copied WHERE id = ANY($1::int[]) ORDER BY id", [[1, 4321]]);
      expect(sample.rows.map((row) => row.body)).toEqual([trickyLine(1), trickyLine(4321)]);

      const out = await copyOut(client, "COPY (SELECT id, body FROM copied ORDER BY id) TO STDOUT");
      expect(out.toString("utf8")).toBe(copyText);
    } finally {
      client.release();
    }
  });

  it("rolls a failing COPY FROM back and keeps the session usable", async () => {
    const client = await pool.connect();
    try {
      await expect(
        copyIn(client, "COPY lines (id, body) FROM STDIN", Buffer.from("1\tone\nnot a number\ttwo\n")),
      ).rejects.toMatchObject({ code: "22P02" });
      expect((await client.query("SELECT count(*)::int AS n FROM lines")).rows).toEqual([{ n: 0 }]);
    } finally {
      client.release();
    }
  });
});

describe("sessions the server ends, and many sessions at once", () => {
  it("surfaces pg_terminate_backend as an error on the client, and keeps serving", async () => {
    const client = new Client(db.url);
    const errors: unknown[] = [];
    let ended = false;
    client.on("error", (error) => errors.push(error));
    client.on("end", () => {
      ended = true;
    });
    await client.connect();
    const pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    await superuser((admin) => admin.query("SELECT pg_terminate_backend($1)", [pid]));
    // Postgres' own FATAL message reaches the client, then the gateway closes the WebSocket.
    await expect.poll(() => ended, { timeout: 5_000 }).toBe(true);
    expect(errors[0]).toMatchObject({ code: "57P01" });
    await expect(client.query("SELECT 1")).rejects.toThrow();
    // No client.end(): the driver's end() on a connection that has already ended never settles.

    expect((await pool.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
  });

  it("serves 50 concurrent sessions across 10 databases", async () => {
    const databases = await Promise.all(Array.from({ length: 10 }, () => createTestDatabase("wsmany")));
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, async (_, index) => {
          const target = databases[index % databases.length] as TestDatabase;
          const client = new Client(target.url);
          await client.connect();
          try {
            await client.query("BEGIN");
            // Held open together: every session is live at the same moment.
            await client.query("SELECT pg_sleep(0.2)");
            const { rows } = await client.query("SELECT current_database() AS db, $1::int AS n", [index]);
            await client.query("COMMIT");
            return rows[0] as { db: string; n: number };
          } finally {
            await client.end();
          }
        }),
      );
      results.forEach((row, index) => {
        expect(row).toEqual({ db: databases[index % databases.length]?.name, n: index });
      });
    } finally {
      await Promise.all(databases.map((database) => dropTestDatabase(database)));
    }
  });
});
