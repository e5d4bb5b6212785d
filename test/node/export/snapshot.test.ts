/**
 * One snapshot: while an export of a busy database runs (many small pages, so many requests), a
 * writer keeps committing transactions that each add an order with 1–5 items, delete the oldest
 * order (its items cascade) and update a tally row with the new counts. The dump restores with
 * `psql -v ON_ERROR_STOP=1` (its foreign key from order_items to orders is added after the data, so
 * an item whose order is missing fails the restore), and the restored database is a state that
 * existed at one instant: its tally matches its own row counts and is one of the states the writer
 * committed.
 *
 * Read outside one snapshot, this fails: order_items is exported before orders, so items of orders
 * deleted in between have no order, and the tally (read last) is newer than both.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import {
  createRestoreTarget,
  createTestDatabase,
  dropTestDatabase,
  gatewayUrl,
  restoreDump,
  type TestDatabase,
} from "../support.ts";

const ORDERS = 3000;

let source: TestDatabase;
let target: TestDatabase;
let dir: string;

beforeAll(async () => {
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  source = await createTestDatabase("exp_snap_src");
  target = await createRestoreTarget("exp_snap_dst");
  dir = await mkdtemp(join(tmpdir(), "tenantry-snap-"));
  const client = new pg.Client({ connectionString: source.url });
  await client.connect();
  try {
    await client.query(`
      CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL);
      CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE, n int NOT NULL,
                                PRIMARY KEY (order_id, n));
      CREATE TABLE tally (id int PRIMARY KEY, orders bigint NOT NULL, items bigint NOT NULL, last_order bigint NOT NULL);
      INSERT INTO orders SELECT i, 'order ' || i || repeat('.', 40) FROM generate_series(1, ${ORDERS}) AS i;
      INSERT INTO order_items SELECT i, n FROM generate_series(1, ${ORDERS}) AS i, generate_series(1, 3) AS n;
      INSERT INTO tally VALUES (1, ${ORDERS}, ${ORDERS * 3}, ${ORDERS});
    `);
  } finally {
    await client.end();
  }
});

afterAll(async () => {
  await dropTestDatabase(source);
  await dropTestDatabase(target);
  await rm(dir, { recursive: true, force: true });
});

interface Tally {
  orders: string;
  items: string;
  last_order: string;
}

/** Commits writes until `stop()`; every committed tally, and how many commits each phase saw. */
function startWriter(url: string) {
  const committed: Tally[] = [];
  let stopping = false;
  const done = (async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (let k = ORDERS + 1; !stopping; k++) {
        await client.query("BEGIN");
        await client.query("INSERT INTO orders VALUES ($1, $2)", [k, `order ${k}`]);
        await client.query("INSERT INTO order_items SELECT $1, n FROM generate_series(1, $2::int) AS n", [
          k,
          (k % 5) + 1,
        ]);
        await client.query("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)");
        const { rows } = await client.query<Tally>(
          `UPDATE tally SET orders = (SELECT count(*) FROM orders), items = (SELECT count(*) FROM order_items),
             last_order = $1 WHERE id = 1 RETURNING orders::text, items::text, last_order::text`,
          [k],
        );
        await client.query("COMMIT");
        if (rows[0]) committed.push(rows[0]);
      }
    } finally {
      await client.end();
    }
  })();
  return {
    committed,
    async stop() {
      stopping = true;
      await done;
    },
  };
}

describe("an export of a busy database", () => {
  it("restores to a state that existed at one instant, every foreign key holding", async () => {
    const writer = startWriter(source.url);
    const exporter = exportDatabase(source.url, { pageBytes: 2 * 1024 });
    let text = "";
    let before = -1;
    try {
      for await (const chunk of exporter.chunks) {
        // Commits made after the export's first chunk (its snapshot is taken before it).
        if (before < 0) before = writer.committed.length;
        text += chunk;
      }
    } finally {
      await writer.stop();
    }
    const during = writer.committed.length - before;
    // The writer did commit while the export read its pages: the test saw a busy database.
    expect(during).toBeGreaterThan(0);
    const pages = exporter.stats().tables.find((t) => t.name === "public.order_items");
    expect(pages?.rows).toBeGreaterThan(ORDERS);

    const file = join(dir, "dump.sql");
    await writeFile(file, text);
    await restoreDump(file, target.url);

    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    try {
      const { rows } = await client.query<Tally & { counted_orders: string; counted_items: string; max_order: string }>(
        `SELECT t.orders::text, t.items::text, t.last_order::text,
                (SELECT count(*) FROM orders)::text AS counted_orders, (SELECT count(*) FROM order_items)::text AS counted_items,
                (SELECT max(id) FROM orders)::text AS max_order
           FROM tally t`,
      );
      const [restored] = rows;
      expect(restored?.counted_orders).toBe(restored?.orders);
      expect(restored?.counted_items).toBe(restored?.items);
      expect(restored?.max_order).toBe(restored?.last_order);
      const state = { orders: restored?.orders, items: restored?.items, last_order: restored?.last_order };
      const initial = { orders: String(ORDERS), items: String(ORDERS * 3), last_order: String(ORDERS) };
      expect([initial, ...writer.committed]).toContainEqual(state);
      const orphans = await client.query(
        "SELECT count(*)::int AS n FROM order_items i WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)",
      );
      expect(orphans.rows[0]?.n).toBe(0);
    } finally {
      await client.end();
    }
  }, 120_000);
});
