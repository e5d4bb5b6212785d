/**
 * The gateway driven by the real `@neondatabase/serverless` client against real Postgres:
 * every value must come back exactly as it would from Neon.
 */
import { NeonDbError, neon } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, gatewayUrl, type TestDatabase, useGatewayForNeon } from "../support.ts";
import { EVERY_TYPE, EVERY_TYPE_BYTES, EVERY_TYPE_DDL, INSERT_EVERY_TYPE, TRICKY_TEXT } from "./every-type.ts";

let db: TestDatabase;
let other: TestDatabase;

beforeAll(async () => {
  useGatewayForNeon();
  db = await createTestDatabase("conf");
  other = await createTestDatabase("conf_other");
  const sql = neon(db.url);
  for (const statement of EVERY_TYPE_DDL) await sql.query(statement);
  await sql`CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL CONSTRAINT people_email_key UNIQUE, age int CHECK (age >= 0))`;
});

afterAll(async () => {
  await dropTestDatabase(db);
  await dropTestDatabase(other);
});

describe("type round-trips through neon() → gateway → Postgres", () => {
  it("returns every type as the driver parses it from Postgres' text", async () => {
    const sql = neon(db.url);
    const bytes = EVERY_TYPE_BYTES;
    const [row] = await sql.query(INSERT_EVERY_TYPE, EVERY_TYPE);
    expect(row).toBeDefined();
    const r = row as Record<string, unknown>;
    expect(r.i2).toBe(-32768);
    expect(r.i4).toBe(2147483647);
    expect(r.i8).toBe("9223372036854775807");
    expect(r.num).toBe("12345678901234567890.123456789012345678901234567890");
    expect(r.f4).toBeNaN();
    expect(r.f8).toBe(Number.NEGATIVE_INFINITY);
    expect(r.b).toBe(true);
    expect(r.t).toBe(TRICKY_TEXT);
    expect(r.u).toBe("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    expect(r.tstz).toBeInstanceOf(Date);
    expect((r.tstz as Date).toISOString()).toBe("2024-02-29T12:00:00.500Z");
    expect(r.iv).toMatchObject({ years: 1, months: 2, days: 3, hours: 4, minutes: 5, seconds: 6, milliseconds: 789 });
    expect(r.j).toEqual({ nested: { a: [1, "two", null] }, "key with space": true });
    expect(r.jb).toEqual({ z: 1, a: "ü", arr: [1.5, false] });
    expect(Buffer.isBuffer(r.by)).toBe(true);
    expect([...(r.by as Buffer)]).toEqual([...bytes]);
    expect(r.ia).toEqual([1, -2, 2147483647]);
    expect(r.ta).toEqual(["a,b", 'q"uote', "back\\slash", "", null, "{brace}", "NULL"]);
    expect(r.m).toBe("happy");
  });

  it("keeps date and timestamp values exact (checked as text on the server)", async () => {
    const sql = neon(db.url);
    const [row] =
      await sql`SELECT d::text AS d, ts::text AS ts, f4::text AS f4, (f4 = 'NaN') AS nan FROM everything ORDER BY id LIMIT 1`;
    expect(row).toEqual({ d: "2024-02-29", ts: "2024-02-29 13:14:15.123456", f4: "NaN", nan: true });
  });

  it("round-trips float Infinity and NULL in every column", async () => {
    const sql = neon(db.url);
    const [inf] = await sql`SELECT 'Infinity'::float8 AS pos, '-Infinity'::float4 AS neg, 'NaN'::float8 AS nan`;
    expect(inf).toEqual({ pos: Number.POSITIVE_INFINITY, neg: Number.NEGATIVE_INFINITY, nan: Number.NaN });
    const [row] = await sql`INSERT INTO everything DEFAULT VALUES RETURNING *`;
    const { id, ...rest } = row as Record<string, unknown>;
    expect(typeof id).toBe("number");
    expect(Object.values(rest)).toHaveLength(19);
    for (const value of Object.values(rest)) expect(value).toBeNull();
  });

  it("answers in array mode with field type OIDs when asked", async () => {
    const sql = neon(db.url, { arrayMode: true, fullResults: true });
    const result = await sql`SELECT 1::int8 AS big, 'x'::text AS t, NULL::int AS n`;
    expect(result.rows).toEqual([["1", "x", null]]);
    expect(result.fields.map((f) => [f.name, f.dataTypeID])).toEqual([
      ["big", 20],
      ["t", 25],
      ["n", 23],
    ]);
    expect(result.command).toBe("SELECT");
    expect(result.rowCount).toBe(1);
  });

  it("sends raw Postgres text on the wire, and objects when array mode is off", async () => {
    const post = (arrayMode: string) =>
      fetch(gatewayUrl(), {
        method: "POST",
        headers: { "Neon-Connection-String": db.url, "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": arrayMode },
        body: JSON.stringify({ query: "SELECT $1::int[] AS a, '\\x0102'::bytea AS b, true AS c", params: ["{1,2}"] }),
      }).then((response) => response.json() as Promise<{ rows: unknown[]; rowAsArray: boolean }>);
    const arrays = await post("true");
    expect(arrays.rows).toEqual([["{1,2}", "\\x0102", "t"]]);
    expect(arrays.rowAsArray).toBe(true);
    const objects = await post("false");
    expect(objects.rows).toEqual([{ a: "{1,2}", b: "\\x0102", c: "t" }]);
    expect(objects.rowAsArray).toBe(false);
  });
});

describe("statements and batches", () => {
  it("returns rows from insert … returning", async () => {
    const sql = neon(db.url);
    const rows =
      await sql`INSERT INTO people (email, age) VALUES ('ret@example.com', 41), ('ret2@example.com', 42) RETURNING email, age`;
    expect(rows).toEqual([
      { email: "ret@example.com", age: 41 },
      { email: "ret2@example.com", age: 42 },
    ]);
  });

  it("commits a batch as one transaction", async () => {
    const sql = neon(db.url);
    const results = await sql.transaction([
      sql`INSERT INTO people (email) VALUES ('batch1@example.com') RETURNING id`,
      sql`INSERT INTO people (email) VALUES ('batch2@example.com') RETURNING id`,
      sql`SELECT count(*)::int AS n FROM people WHERE email LIKE 'batch%'`,
    ]);
    expect(results).toHaveLength(3);
    expect(results[2]).toEqual([{ n: 2 }]);
    const [after] = await sql`SELECT count(*)::int AS n FROM people WHERE email LIKE 'batch%'`;
    expect(after).toEqual({ n: 2 });
  });

  it("rolls the whole batch back when one statement fails, leaving no rows behind", async () => {
    const sql = neon(db.url);
    const failing = sql.transaction([
      sql`INSERT INTO people (email) VALUES ('rollback-a@example.com')`,
      sql`INSERT INTO people (email) VALUES ('rollback-b@example.com')`,
      sql`INSERT INTO people (email) VALUES ('rollback-a@example.com')`,
    ]);
    await expect(failing).rejects.toMatchObject({ code: "23505" });
    const [after] = await sql`SELECT count(*)::int AS n FROM people WHERE email LIKE 'rollback-%'`;
    expect(after).toEqual({ n: 0 });
  });

  it("refuses a write in a read-only batch", async () => {
    const sql = neon(db.url);
    const attempt = sql.transaction([sql`INSERT INTO people (email) VALUES ('ro@example.com')`], { readOnly: true });
    await expect(attempt).rejects.toMatchObject({ code: "25006" });
    const [after] = await sql`SELECT count(*)::int AS n FROM people WHERE email = 'ro@example.com'`;
    expect(after).toEqual({ n: 0 });
  });

  it.each([
    ["ReadCommitted", "read committed"],
    ["RepeatableRead", "repeatable read"],
    ["Serializable", "serializable"],
  ] as const)("honours isolation level %s", async (level, expected) => {
    const sql = neon(db.url);
    const [rows] = await sql.transaction(
      [sql`SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`],
      { isolationLevel: level, readOnly: true },
    );
    expect(rows).toEqual([{ iso: expected, ro: "on" }]);
  });

  it("honours deferrable", async () => {
    const sql = neon(db.url);
    const [rows] = await sql.transaction([sql`SELECT current_setting('transaction_deferrable') AS d`], {
      isolationLevel: "Serializable",
      readOnly: true,
      deferrable: true,
    });
    expect(rows).toEqual([{ d: "on" }]);
  });
});

describe("errors", () => {
  it("surfaces code, constraint, detail, table and schema on NeonDbError", async () => {
    const sql = neon(db.url);
    await sql`INSERT INTO people (email) VALUES ('dup@example.com')`;
    const error = await sql`INSERT INTO people (email) VALUES ('dup@example.com')`.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeonDbError);
    expect(error).toMatchObject({
      code: "23505",
      constraint: "people_email_key",
      detail: "Key (email)=(dup@example.com) already exists.",
      table: "people",
      schema: "public",
      severity: "ERROR",
    });
    const check = await sql`INSERT INTO people (email, age) VALUES ('neg@example.com', -1)`.catch((e: unknown) => e);
    expect(check).toMatchObject({ code: "23514", constraint: "people_age_check" });
    const syntax = await sql.query("SELEC 1").catch((e: unknown) => e);
    expect(syntax).toMatchObject({ code: "42601", position: "1" });
  });

  it("keeps two databases apart: neither sees the other's tables", async () => {
    const a = neon(db.url);
    const b = neon(other.url);
    await b`CREATE TABLE only_in_other (secret text)`;
    await b`INSERT INTO only_in_other VALUES ('other-secret')`;
    await expect(a`SELECT * FROM only_in_other`).rejects.toMatchObject({ code: "42P01" });
    await expect(b`SELECT * FROM people`).rejects.toMatchObject({ code: "42P01" });
    const [[whoA], [whoB]] = await Promise.all([a`SELECT current_database() AS d`, b`SELECT current_database() AS d`]);
    expect(whoA).toEqual({ d: db.name });
    expect(whoB).toEqual({ d: other.name });
  });

  it("refuses a role on a database it may not connect to", async () => {
    const crossed = new URL(other.url);
    crossed.pathname = `/${db.name}`;
    const sql = neon(crossed.toString());
    await expect(sql`SELECT 1`).rejects.toMatchObject({ code: "42501" });
  });

  it("refuses a wrong password", async () => {
    const wrong = new URL(db.url);
    wrong.password = "not-the-password";
    const sql = neon(wrong.toString());
    const error = await sql`SELECT 1`.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeonDbError);
    expect(error).toMatchObject({ code: "28P01" });
    // The right password still works after a refused one.
    expect(await neon(db.url)`SELECT 1 AS one`).toEqual([{ one: 1 }]);
  });
});

describe("concurrency", () => {
  it("answers 50 concurrent queries across 10 databases, each from its own database", async () => {
    const dbs = await Promise.all(Array.from({ length: 10 }, () => createTestDatabase("conc")));
    try {
      await Promise.all(
        dbs.map(async (each) => {
          const sql = neon(each.url);
          await sql`CREATE TABLE marker (name text)`;
          await sql.query("INSERT INTO marker VALUES ($1)", [each.name]);
        }),
      );
      const jobs = Array.from({ length: 50 }, (_, index) => {
        const each = dbs[index % dbs.length] as TestDatabase;
        return neon(each.url)`SELECT name, current_database() AS d, pg_sleep(0.02)::text AS s FROM marker`.then(
          (rows) => ({ expected: each.name, rows }),
        );
      });
      const answers = await Promise.all(jobs);
      expect(answers).toHaveLength(50);
      for (const { expected, rows } of answers) expect(rows).toEqual([{ name: expected, d: expected, s: "" }]);
    } finally {
      await Promise.all(dbs.map(dropTestDatabase));
    }
  });
});
