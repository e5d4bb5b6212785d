/**
 * The one value per column type that the HTTP conformance suite and the WebSocket parity suite both
 * send through the gateway, and the table that holds them.
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
