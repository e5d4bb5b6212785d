/**
 * The one value per column type that the HTTP conformance suite and the parity suites (WebSocket
 * against HTTP, gatewayFetch against the default fetch) send through the gateway, the table that
 * holds them, and the query set the parity suites run both ways.
 */

export const TRICKY_TEXT = "héllo 🌍 ünïcödé\ttab\nnew line\\back\\slash 'quote' \"dq\" \\N \\.";

export const EVERY_TYPE_BYTES = Buffer.from([0, 1, 2, 254, 255, 92]);

/** Parameters of INSERT_EVERY_TYPE, in column order. */
export const EVERY_TYPE: unknown[] = [
  -32768,
  2147483647,
  "9223372036854775807",
  "12345678901234567890.123456789012345678901234567890",
  "NaN",
  "-Infinity",
  true,
  TRICKY_TEXT,
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "2024-02-29",
  "2024-02-29 13:14:15.123456",
  new Date("2024-02-29T12:00:00.5Z"),
  "1 year 2 mons 3 days 04:05:06.789",
  { nested: { a: [1, "two", null] }, "key with space": true },
  { z: 1, a: "ü", arr: [1.5, false] },
  EVERY_TYPE_BYTES,
  [1, -2, 2147483647],
  ["a,b", 'q"uote', "back\\slash", "", null, "{brace}", "NULL"],
  "happy",
];

export const INSERT_EVERY_TYPE = `INSERT INTO everything (i2, i4, i8, num, f4, f8, b, t, u, d, ts, tstz, iv, j, jb, by, ia, ta, m)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING *`;

/** The enum and the table INSERT_EVERY_TYPE writes to, one statement each. */
export const EVERY_TYPE_DDL = [
  "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
  `CREATE TABLE everything (
    id serial PRIMARY KEY,
    i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8, b bool, t text, u uuid,
    d date, ts timestamp, tstz timestamptz, iv interval, j json, jb jsonb, by bytea,
    ia int4[], ta text[], m mood
  )`,
];

export interface QueryCase {
  readonly name: string;
  readonly text: string;
  readonly params?: unknown[];
}

/** The query set two paths to the same database must answer identically (rows, counts, fields). */
export const PARITY_CASES: readonly QueryCase[] = [
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
export function comparable(result: { command: string; rowCount: number | null; rows: unknown[]; fields: object[] }) {
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows,
    fields: result.fields.map((field) => ({ ...field })),
  };
}
