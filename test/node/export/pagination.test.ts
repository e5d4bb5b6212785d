/**
 * Keyset pagination of the export engine over many pages: every row exactly once, whatever the key.
 * Tables with integer keys crossing digit boundaries (9 → 10 → 100 …, where text order and numeric
 * order differ), a composite key, a uuid key, a text key, a descending-looking bigint range, and no
 * key at all (ctid pages across many heap pages) are exported with a tiny page size (hundreds of
 * pages) and with one page for everything, and must give the same row counts (equal to count(*))
 * and the same order-independent checksums.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, type TestDatabase } from "../support.ts";

let db: TestDatabase;

const TABLES: Record<string, [string, string]> = {
  ints: [
    "CREATE TABLE ints (id int PRIMARY KEY, v text)",
    "INSERT INTO ints SELECT i, 'v' || i FROM generate_series(1, 3000) AS i",
  ],
  bigints: [
    "CREATE TABLE bigints (id bigint PRIMARY KEY, v int)",
    "INSERT INTO bigints SELECT i::bigint * 1000003 - 1500000000, i FROM generate_series(1, 2500) AS i",
  ],
  composite: [
    "CREATE TABLE composite (a int, b int, v text, PRIMARY KEY (a, b))",
    "INSERT INTO composite SELECT i / 7, i % 7 * 3, md5(i::text) FROM generate_series(1, 2500) AS i",
  ],
  uuids: [
    "CREATE TABLE uuids (id uuid PRIMARY KEY, v int)",
    "INSERT INTO uuids SELECT md5(i::text)::uuid, i FROM generate_series(1, 2000) AS i",
  ],
  texts: [
    "CREATE TABLE texts (k text PRIMARY KEY, v int)",
    "INSERT INTO texts SELECT 'k' || i, i FROM generate_series(1, 2000) AS i",
  ],
  // Keys read back from the COPY text of a page's last line: escaped characters must unescape.
  oddkeys: [
    "CREATE TABLE oddkeys (k text PRIMARY KEY, v int)",
    `INSERT INTO oddkeys SELECT (ARRAY[E'tab\\t', E'nl\\n', E'bs\\\\', E'\\\\N', 'q"', E'cr\\r', E'vt\\v'])[1 + i % 7] || i, i
     FROM generate_series(1, 2100) AS i`,
  ],
  // Key types whose ::text is not their output function (bool, inet).
  castkeys: [
    "CREATE TABLE castkeys (flag bool, ip inet, n int, PRIMARY KEY (flag, ip, n))",
    "INSERT INTO castkeys SELECT i % 2 = 0, ('10.0.' || (i % 5) || '.1')::inet, i FROM generate_series(1, 2000) AS i",
  ],
  // A generated primary key is not in the COPY line: paged by ctid instead.
  genkey: [
    "CREATE TABLE genkey (a int NOT NULL, k int GENERATED ALWAYS AS (a * 2) STORED PRIMARY KEY)",
    "INSERT INTO genkey SELECT i FROM generate_series(1, 1500) AS i",
  ],
  nokey: [
    "CREATE TABLE nokey (a int, b text)",
    "INSERT INTO nokey SELECT i % 50, repeat('x', 100) || i FROM generate_series(1, 3000) AS i",
  ],
};

beforeAll(async () => {
  // HTTP for the queries, the WebSocket session for the export's snapshot: both to the gateway.
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  db = await createTestDatabase("exp_pages");
  const sql = neon(db.url);
  for (const [create, insert] of Object.values(TABLES)) {
    await sql.query(create);
    await sql.query(insert);
  }
  // Holes in the heap, so ctid pages are not contiguous.
  await sql.query("DELETE FROM nokey WHERE a = 7");
});

afterAll(async () => {
  if (db) await dropTestDatabase(db);
});

async function stats(pageBytes: number) {
  const exporter = exportDatabase(db.url, { pageBytes });
  let pages = 0;
  for await (const _ of exporter.chunks) pages += 1;
  return { tables: exporter.stats().tables, pages };
}

describe("export engine pagination", () => {
  it("exports every row exactly once across hundreds of pages, for every kind of key", async () => {
    const sql = neon(db.url);
    const counts = Object.fromEntries(
      await Promise.all(
        Object.keys(TABLES).map(async (name) => {
          const [row] = await sql.query(`SELECT count(*)::int AS n FROM ${name}`);
          return [`public.${name}`, (row as { n: number }).n] as const;
        }),
      ),
    );
    const small = await stats(512);
    const whole = await stats(64 * 1024 * 1024);
    expect(small.pages).toBeGreaterThan(whole.pages + 100);
    expect(Object.fromEntries(small.tables.map((t) => [t.name, t.rows]))).toEqual(counts);
    expect(small.tables).toEqual(whole.tables);
  }, 120_000);

  it("keeps pages near the page size from the first page on, when rows are wide", async () => {
    const wide = await createTestDatabase("exp_widerows");
    try {
      const sql = neon(wide.url);
      // ~19 KB of hex per row, which TOAST barely compresses; 300 rows.
      await sql.query("CREATE TABLE wide_rows (id int PRIMARY KEY, v text)");
      await sql.query(
        `INSERT INTO wide_rows SELECT i, (SELECT string_agg(md5(i::text || '.' || j::text), '') FROM generate_series(1, 600) AS j)
         FROM generate_series(1, 300) AS i`,
      );
      await sql.query("CREATE TABLE wide_nokey AS SELECT * FROM wide_rows");
      await sql.query("ANALYZE");
      const pageBytes = 64 * 1024;
      const exporter = exportDatabase(wide.url, { pageBytes });
      let largest = 0;
      for await (const chunk of exporter.chunks) largest = Math.max(largest, chunk.length);
      expect(exporter.stats().tables.map((t) => t.rows)).toEqual([300, 300]);
      // Before: the first pages took 500 rows whatever their size, here all 300 rows (5.8 MB) at once.
      expect(largest).toBeLessThan(4 * pageBytes);
    } finally {
      await dropTestDatabase(wide);
    }
  }, 60_000);

  it.each([
    [
      "before its first page (its first key range fails)",
      (chunk: string) => chunk.startsWith('\nCOPY "public"."doomed"'),
    ],
    ["after its first page (key ranges and pages in flight fail)", (_: string, paged: boolean) => paged],
  ])(
    "fails, rather than ending short or hanging, when a table goes away %s",
    async (_, when) => {
      const doomed = await createTestDatabase("exp_doomed");
      try {
        const sql = neon(doomed.url);
        await sql.query("CREATE TABLE doomed (id int PRIMARY KEY, v text)");
        await sql.query("INSERT INTO doomed SELECT i, repeat('v', 50) FROM generate_series(1, 5000) AS i");
        let paged = false;
        const exporter = exportDatabase(doomed.url, { pageBytes: 1024, onProgress: () => (paged = true) });
        const drained = (async () => {
          let dropped = false;
          for await (const chunk of exporter.chunks) {
            if (!dropped && when(chunk, paged)) {
              dropped = true;
              await sql.query("DROP TABLE doomed");
            }
          }
        })();
        await expect(drained).rejects.toThrow(/doomed/);
        expect(() => exporter.stats()).toThrow(/not finished/);
      } finally {
        await dropTestDatabase(doomed);
      }
    },
    60_000,
  );
});
