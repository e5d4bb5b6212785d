/**
 * The per-table checksum of the export manifest (a sum of 64-bit line hashes computed by Postgres):
 * equal for equal sets of rows whatever their order or the page boundaries, and different when any
 * row differs (one character, a character moved across a field boundary, a row added, dropped or
 * repeated, two fields swapped), including non-BMP characters and a nondeterministic collation,
 * under which "A" and "a" compare equal but must not hash equal.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, type TestDatabase } from "../support.ts";

let db: TestDatabase;

const BASE: [string, string][] = [
  ["1", "acme"],
  ["2", "globex 12.50"],
  ["3", "ünï 🌍 x"],
  ["4", ""],
  ["5", "odd"],
];

/** Tables holding variations of BASE, each compared with `base`. */
const VARIANTS: Record<string, [string, string][]> = {
  base: BASE,
  reversed: [...BASE].reverse(),
  shuffled: [BASE[2], BASE[0], BASE[4], BASE[1], BASE[3]] as [string, string][],
  one_char: BASE.map(([k, v]) => [k, v === "acme" ? "acmf" : v]),
  moved_across_tab: BASE.map(([k, v]) => (k === "2" ? ["21", "lobex 12.50"] : [k, v])),
  non_bmp: BASE.map(([k, v]) => [k, v.replace("🌍", "🌎")]),
  dropped: BASE.slice(0, 4),
  repeated: [...BASE, ["5", "odd"]],
  case_only: BASE.map(([k, v]) => [k, v === "acme" ? "ACME" : v]),
  swapped: BASE.map(([k, v]) => (k === "1" ? ["acme", "1"] : [k, v])),
};

let checksums: Record<string, string>;

async function exportChecksums(pageBytes: number): Promise<Record<string, string>> {
  const exporter = exportDatabase(db.url, { pageBytes });
  for await (const _chunk of exporter.chunks) {
    // drained
  }
  return Object.fromEntries(exporter.stats().tables.map((t) => [t.name.replace("public.", ""), t.checksum]));
}

beforeAll(async () => {
  // HTTP for the queries, the WebSocket session for the export's snapshot: both to the gateway.
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  db = await createTestDatabase("exp_checksum");
  const sql = neon(db.url);
  await sql.query("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)");
  for (const [name, rows] of Object.entries(VARIANTS)) {
    // No key: rows stay in insertion order on disk, so `reversed` really is stored reversed.
    await sql.query(`CREATE TABLE ${name} (k text, v text COLLATE ci)`);
    for (const [k, v] of rows) await sql.query(`INSERT INTO ${name} VALUES ($1, $2)`, [k, v]);
  }
  await sql.query("CREATE TABLE empty (k text)");
  // More rows than the first two pages of a table hold (500 each), so small pages really do cut it.
  await sql.query("CREATE TABLE many AS SELECT i::text AS k, md5(i::text) AS v FROM generate_series(1, 1200) AS i");
  checksums = await exportChecksums(2 * 1024 * 1024);
}, 60_000);

afterAll(async () => {
  await dropTestDatabase(db);
});

describe("table checksum", () => {
  it("is 16 hex digits, zero for an empty table, and ignores the order of rows", () => {
    expect(checksums.base).toMatch(/^[0-9a-f]{16}$/);
    expect(checksums.empty).toBe("0000000000000000");
    expect(checksums.reversed).toBe(checksums.base);
    expect(checksums.shuffled).toBe(checksums.base);
  });

  it("ignores page boundaries (one row per page after the first two)", async () => {
    expect(await exportChecksums(1)).toEqual(checksums);
  }, 60_000);

  it.each([
    ["one character changed", "one_char"],
    ["a character moved across a field boundary", "moved_across_tab"],
    ["a character outside the BMP changed", "non_bmp"],
    ["a row dropped", "dropped"],
    ["a row repeated", "repeated"],
    ["only the case changed, under a case-insensitive collation", "case_only"],
    ["two fields swapped", "swapped"],
  ])("changes when %s", (_, table) => {
    expect(checksums[table]).toMatch(/^[0-9a-f]{16}$/);
    expect(checksums[table]).not.toBe(checksums.base);
  });
});
