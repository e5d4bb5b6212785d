/**
 * A destructive rollback (down files that drop a column) is refused when no export of the tenant can
 * be taken first, and leaves everything in place; with the export taken by the project's export
 * engine it proceeds, and restoring that export with `psql -v ON_ERROR_STOP=1` into a fresh database
 * brings back the dropped column with its values. `force` skips the export. psql must be on PATH.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import { dropGuard, RollbackRefusedError } from "../../../src/control/fleet/drop-guard.ts";
import { migrations } from "../../../src/generated/migrations.ts";
import { migrateDatabase, rollbackMigrations } from "../../../src/shared/migrations.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, restoreDump, type TestDatabase } from "../support.ts";

const NAMES = migrations.map((m) => m.name);
const LATEST = NAMES.at(-1) as string;
const TENANT = { id: "t_rollback_export", slug: "rollback-export" };
const created: TestDatabase[] = [];
let dir: string;

beforeAll(async () => {
  // HTTP for the queries, the WebSocket session for the export's snapshot: both to the gateway.
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  dir = await mkdtemp(join(tmpdir(), "tenantry-rollback-"));
});
afterAll(async () => {
  for (const db of created) await dropTestDatabase(db);
  await rm(dir, { recursive: true, force: true });
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase("rbexport");
  created.push(db);
  return db;
}

/** A tenant at the latest version with an order whose note the rollback of 0002 would drop. */
async function tenantWithNotes(): Promise<TestDatabase> {
  const db = await database();
  await migrateDatabase(neon(db.url), migrations);
  await neon(db.url).transaction((sql) => [
    sql`INSERT INTO carts (id, owner_sub, status) VALUES ('00000000-0000-4000-8000-000000000001', 'alice', 'ordered')`,
    sql`INSERT INTO orders (id, cart_id, owner_sub, total_cents, currency, note)
        VALUES ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'alice', 1200, 'EUR', 'leave it at the door, it''s fine')`,
  ]);
  return db;
}

async function shape(url: string) {
  const [row] = await neon(url).query(
    `SELECT
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note') AS note,
       EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'order_items_product_idx') AS "productIdx"`,
  );
  return row as { note: boolean; productIdx: boolean };
}

const ledger = async (url: string) =>
  ((await neon(url).query("SELECT name FROM tenantry.migrations ORDER BY name")) as { name: string }[]).map(
    (r) => r.name,
  );

/** The export engine's dump of the database, written to a file: what the R2 export holds, ungzipped. */
function exportToFile(db: TestDatabase, file: string) {
  return async () => {
    let text = "";
    for await (const chunk of exportDatabase(db.url).chunks) text += chunk;
    await writeFile(file, text);
    return "exp_file";
  };
}

describe("a destructive rollback", () => {
  it("is refused without an export, and when the export fails, with nothing undone", async () => {
    const db = await tenantWithNotes();
    for (const guard of [
      dropGuard(TENANT, { force: false }),
      dropGuard(TENANT, {
        force: false,
        exportBeforeDrop: async () => {
          throw new Error("bucket unavailable");
        },
      }),
    ]) {
      const error = await rollbackMigrations(neon(db.url), migrations, {
        steps: 2,
        from: LATEST,
        beforeDrop: guard.beforeDrop,
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RollbackRefusedError);
      expect((error as Error).message).toContain(`column orders.note (${NAMES[2]})`);
      expect(guard.exportId()).toBeUndefined();
      // Refused before the first step: even the index of the newest migration is still there.
      expect(await shape(db.url)).toEqual({ note: true, productIdx: true });
      expect(await ledger(db.url)).toEqual(NAMES);
    }
  });

  it("with its export, drops the column, and restoring the export brings the column and its values back", async () => {
    const db = await tenantWithNotes();
    const file = join(dir, "before-rollback.sql");
    const guard = dropGuard(TENANT, { force: false, exportBeforeDrop: exportToFile(db, file) });
    const result = await rollbackMigrations(neon(db.url), migrations, {
      steps: 2,
      from: LATEST,
      beforeDrop: guard.beforeDrop,
    });
    expect(result.rolledBack).toEqual([LATEST, NAMES[2]]);
    expect(result.drops).toEqual([{ migration: NAMES[2], kind: "column", object: "orders.note" }]);
    expect(guard.exportId()).toBe("exp_file");
    expect(await shape(db.url)).toEqual({ note: false, productIdx: false });

    const restored = await database();
    await restoreDump(file, restored.url);
    expect(await shape(restored.url)).toEqual({ note: true, productIdx: true });
    expect(await neon(restored.url).query("SELECT id, note, total_cents FROM orders")).toEqual([
      { id: "00000000-0000-4000-8000-000000000002", note: "leave it at the door, it's fine", total_cents: 1200 },
    ]);
  });

  it("with force, proceeds without taking an export", async () => {
    const db = await tenantWithNotes();
    let exports = 0;
    const guard = dropGuard(TENANT, {
      force: true,
      exportBeforeDrop: async () => {
        exports++;
        return "never";
      },
    });
    const result = await rollbackMigrations(neon(db.url), migrations, {
      steps: 2,
      from: LATEST,
      beforeDrop: guard.beforeDrop,
    });
    expect(result.rolledBack).toEqual([LATEST, NAMES[2]]);
    expect(exports).toBe(0);
    expect(await shape(db.url)).toEqual({ note: false, productIdx: false });
  });

  it("that drops nothing (an index) needs no export", async () => {
    const db = await tenantWithNotes();
    const guard = dropGuard(TENANT, { force: false });
    const result = await rollbackMigrations(neon(db.url), migrations, {
      steps: 1,
      from: LATEST,
      beforeDrop: guard.beforeDrop,
    });
    expect(result).toEqual({ rolledBack: [LATEST], version: NAMES[2], drops: [] });
  });
});
