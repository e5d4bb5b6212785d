/**
 * One query set, two paths: `Pool` over the gateway's WebSocket endpoint and `neon()` over its
 * HTTP endpoint must return identical rows, commands, row counts and field metadata, as Neon's
 * own driver tests compare its two faces. Parameters cover every type the HTTP suite covers.
 */
import { neon, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, type TestDatabase } from "../support.ts";
import { EVERY_TYPE, EVERY_TYPE_DDL, INSERT_EVERY_TYPE } from "./every-type.ts";
import { useGatewayWebSockets } from "./ws-support.ts";

let db: TestDatabase;
let pool: Pool;

interface Case {
  readonly name: string;
  readonly text: string;
  readonly params?: unknown[];
}

const CASES: readonly Case[] = [
  { name: "insert of every type, returning *", text: INSERT_EVERY_TYPE, params: EVERY_TYPE },
  { name: "select of every column", text: "SELECT * FROM everything ORDER BY id" },
  {
    name: "parameters cast on the server",
    text: `SELECT $1::int2 AS i2, $2::int4 AS i4, $3::int8 AS i8, $4::numeric AS num, $5::float4 AS f4,
      $6::float8 AS f8, $7::bool AS b, $8::text AS t, $9::uuid AS u, $10::date AS d, $11::timestamp AS ts,
      $12::timestamptz AS tstz, $13::interval AS iv, $14::json AS j, $15::jsonb AS jb, $16::bytea AS by,
      $17::int4[] AS ia, $18::text[] AS ta, $19::mood AS m`,
    params: EVERY_TYPE,
  },
  { name: "NULL in every column", text: "INSERT INTO everything DEFAULT VALUES RETURNING *" },
  {
    name: "special floats",
    text: "SELECT 'Infinity'::float8 AS pos, '-Infinity'::float4 AS neg, 'NaN'::float8 AS nan",
  },
  { name: "no rows", text: "SELECT id FROM everything WHERE false" },
  // Both paths run every case, so a write must leave the same state for the second one.
  { name: "update count", text: "UPDATE everything SET b = b WHERE m IS NULL" },
  { name: "delete count", text: "DELETE FROM everything WHERE id < 0" },
  { name: "a DDL command", text: "CREATE TEMP TABLE IF NOT EXISTS scratch (x int)" },
  {
    name: "expressions without a table",
    text: "SELECT 1 AS one, NULL::int AS nothing, ARRAY[[1,2],[3,4]] AS grid, '{\"a\":1}'::jsonb -> 'a' AS a",
  },
];

/** What both paths must agree on; Field objects compared by their plain fields. */
function comparable(result: { command: string; rowCount: number | null; rows: unknown[]; fields: object[] }) {
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows,
    fields: result.fields.map((field) => ({ ...field })),
  };
}

beforeAll(async () => {
  useGatewayWebSockets();
  db = await createTestDatabase("wspar");
  pool = new Pool({ connectionString: db.url, max: 2 });
  for (const statement of EVERY_TYPE_DDL) await pool.query(statement);
});

afterAll(async () => {
  await pool?.end();
  await dropTestDatabase(db);
});

describe("Pool over /v2 and neon() over /sql agree", () => {
  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const sql = neon(db.url, { fullResults: true });
      const viaHttp = await sql.query(testCase.text, testCase.params ?? []);
      const viaWebSocket = await pool.query(testCase.text, testCase.params ?? []);
      const http = comparable(viaHttp);
      const session = comparable(viaWebSocket);
      // The serial id differs between the two inserts; everything else must not.
      if (testCase.text.startsWith("INSERT")) {
        for (const row of [...http.rows, ...session.rows] as Record<string, unknown>[]) row.id = "(serial)";
      }
      expect(session).toEqual(http);
    });
  }

  it("agrees in array mode", async () => {
    const sql = neon(db.url, { fullResults: true, arrayMode: true });
    const text = "SELECT 1::int8 AS big, 'x'::text AS t, NULL::int AS n, now() - now() AS zero";
    const viaHttp = await sql.query(text);
    const viaWebSocket = await pool.query({ text, rowMode: "array" });
    expect(comparable(viaWebSocket)).toEqual(comparable(viaHttp));
  });

  it("reports the same error fields", async () => {
    const sql = neon(db.url);
    const failing = "SELECT 1 / (SELECT count(*) FROM everything WHERE false)::int";
    const viaHttp = await sql.query(failing).catch((error: unknown) => error);
    const viaWebSocket = await pool.query(failing).catch((error: unknown) => error);
    const fields = ["code", "severity", "message", "routine"] as const;
    const pick = (error: unknown) =>
      Object.fromEntries(fields.map((field) => [field, (error as Record<string, unknown>)[field]]));
    expect(pick(viaWebSocket)).toEqual(pick(viaHttp));
    expect(pick(viaHttp).code).toBe("22012");
  });
});
