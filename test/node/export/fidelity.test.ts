/**
 * Schema fidelity, the catalogs as the reference: a schema written here with an extension that
 * ships with Postgres (btree_gist), a range type with a difference function, a composite type,
 * functions (one before the tables, used by a generated column; one taking a table's row type,
 * used by a view), a procedure, table inheritance, a partitioned table (a sub-partitioned partition,
 * a default partition, an index and a foreign key on the partitioned table), materialized views (one
 * populated, with an index, one never filled), exclusion and deferrable constraints, a NOT VALID check that
 * existing rows violate, triggers (one disabled), a rule, and row-level security with FORCE and
 * permissive and restrictive policies, exports, restores with `psql -v ON_ERROR_STOP=1` into a
 * fresh database, and the two databases' catalogs agree: columns, constraints (deferrability,
 * validation), indexes, views, functions, triggers (and their enabled state), rules, policies,
 * RLS flags, extensions, range types, comments, sequence values, and a hash of every table's rows.
 *
 * The source role has BYPASSRLS, as Neon's roles do (neon_superuser); without it the export of a
 * table whose policies hide rows from it fails instead of writing a dump without those rows.
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
  superuser,
  type TestDatabase,
} from "../support.ts";

let source: TestDatabase;
let target: TestDatabase;
let dir: string;

const SETUP = `
  CREATE EXTENSION btree_gist;
  CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
  CREATE TYPE address AS (street text, zip text);
  CREATE FUNCTION slugify(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(replace(t, ' ', '-')) $$;
  CREATE FUNCTION touch_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
  CREATE TABLE rooms (id int PRIMARY KEY, name text NOT NULL, slug text GENERATED ALWAYS AS (slugify(name)) STORED,
                      addr address, CONSTRAINT rooms_name_key UNIQUE (name) DEFERRABLE INITIALLY IMMEDIATE);
  CREATE FUNCTION room_label(r rooms) RETURNS text LANGUAGE sql STABLE AS $$ SELECT r.name || ' #' || r.id $$;
  CREATE TABLE bookings (id serial PRIMARY KEY, room int NOT NULL REFERENCES rooms (id) DEFERRABLE INITIALLY DEFERRED,
                         during tsrange NOT NULL, weight floatrange, updated_at timestamptz,
                         CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room WITH =, during WITH &&));
  CREATE TABLE journal (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL);
  CREATE PROCEDURE add_note(n text) LANGUAGE sql AS $$ INSERT INTO journal (note) VALUES (n) $$;
  INSERT INTO rooms (id, name, addr) VALUES (1, 'Blue Room', ROW('1 Main St', '10001')), (2, 'hidden', NULL), (3, 'Red Room', NULL);
  INSERT INTO bookings (room, during, weight, updated_at) VALUES
    (1, '[2026-01-01 10:00, 2026-01-01 11:00)', '[1.5, 2.5)', '2026-01-01 09:00+00'),
    (1, '[2026-01-01 11:00, 2026-01-01 12:00)', 'empty', '2026-01-01 09:30+00'),
    (3, '[2026-01-02 10:00, 2026-01-02 11:00)', NULL, NULL);
  -- One implicit transaction: the deferred foreign key's checks must run before ALTER TABLE.
  SET CONSTRAINTS ALL IMMEDIATE;
  ALTER TABLE bookings ADD CONSTRAINT bookings_weight_nonempty CHECK (weight IS NULL OR NOT isempty(weight)) NOT VALID;
  CALL add_note('first');
  CREATE TABLE vehicles (id int PRIMARY KEY, wheels int NOT NULL CHECK (wheels > 0));
  CREATE TABLE trucks (payload_kg int) INHERITS (vehicles);
  INSERT INTO vehicles VALUES (1, 2), (2, 4);
  INSERT INTO trucks VALUES (3, 6, 12000), (4, 18, 30000);
  CREATE TABLE readings (id bigint NOT NULL, at date NOT NULL, value numeric, PRIMARY KEY (id, at),
                         CONSTRAINT readings_room_fk FOREIGN KEY (id) REFERENCES rooms (id) NOT VALID) PARTITION BY RANGE (at);
  CREATE TABLE readings_2025 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
  CREATE TABLE readings_2026 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY HASH (id);
  CREATE TABLE readings_2026_h0 PARTITION OF readings_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
  CREATE TABLE readings_2026_h1 PARTITION OF readings_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
  CREATE TABLE readings_other PARTITION OF readings DEFAULT;
  CREATE INDEX readings_value_idx ON readings (value);
  INSERT INTO readings SELECT 1 + 2 * (i % 2), date '2024-12-30' + i * 7, i * 1.5 FROM generate_series(0, 120) AS i;
  CREATE MATERIALIZED VIEW monthly AS SELECT date_trunc('month', at) AS month, count(*) AS n, sum(value) AS total
    FROM readings GROUP BY 1;
  CREATE UNIQUE INDEX monthly_month ON monthly (month);
  CREATE MATERIALIZED VIEW never_filled AS SELECT id FROM rooms WITH NO DATA;
  COMMENT ON MATERIALIZED VIEW monthly IS 'refreshed nightly';
  COMMENT ON TABLE readings_2025 IS 'last year';
  CREATE VIEW room_labels AS SELECT room_label(r) AS label FROM rooms r;
  CREATE TRIGGER bookings_touch BEFORE UPDATE ON bookings FOR EACH ROW EXECUTE FUNCTION touch_updated();
  CREATE TRIGGER bookings_touch_insert BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION touch_updated();
  ALTER TABLE bookings DISABLE TRIGGER bookings_touch_insert;
  CREATE RULE rooms_journal AS ON DELETE TO rooms DO ALSO INSERT INTO journal (note) VALUES ('deleted ' || OLD.name);
  ALTER TABLE rooms ENABLE ROW LEVEL SECURITY;
  ALTER TABLE rooms FORCE ROW LEVEL SECURITY;
  CREATE POLICY rooms_visible ON rooms FOR SELECT USING (name <> 'hidden');
  CREATE POLICY rooms_positive ON rooms AS RESTRICTIVE FOR INSERT WITH CHECK (id > 0);
  COMMENT ON FUNCTION slugify(text) IS 'kebab case';
  COMMENT ON PROCEDURE add_note(text) IS 'appends to the journal';
  COMMENT ON TRIGGER bookings_touch ON bookings IS 'keeps updated_at';
  COMMENT ON POLICY rooms_visible ON rooms IS 'hidden rooms stay hidden';
  COMMENT ON RULE rooms_journal ON rooms IS 'deletes are journaled';
  COMMENT ON CONSTRAINT bookings_no_overlap ON bookings IS 'one booking per room at a time';
  COMMENT ON TABLE bookings IS 'who has which room when';
  COMMENT ON COLUMN bookings.during IS 'half-open';
`;

/** What must agree between source and restored copy, each query run as the superuser. */
const CATALOG = [
  `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, is_identity, is_generated, generation_expression
     FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
  `SELECT c.relname, con.conname, con.contype, con.condeferrable, con.condeferred, con.convalidated, pg_get_constraintdef(con.oid)
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2`,
  "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
  "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
  "SELECT matviewname, definition, ispopulated, hasindexes FROM pg_matviews WHERE schemaname = 'public' ORDER BY 1",
  "SELECT month::text, n, total::text FROM monthly ORDER BY 1",
  `SELECT p.proname, p.prokind, pg_get_functiondef(p.oid) FROM pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
     ORDER BY 1, 3`,
  `SELECT c.relname, t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE NOT t.tgisinternal ORDER BY 1, 2`,
  "SELECT tablename, rulename, definition FROM pg_rules WHERE schemaname = 'public' ORDER BY 1, 2",
  "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check FROM pg_policies ORDER BY 1, 2",
  `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace
     AND relkind = 'r' ORDER BY 1`,
  "SELECT extname FROM pg_extension ORDER BY 1",
  "SELECT inhrelid::regclass::text, inhparent::regclass::text, inhseqno FROM pg_inherits ORDER BY 1, 3",
  `SELECT c.relname, c.relkind, c.relispartition, pg_get_expr(c.relpartbound, c.oid), pg_get_partkeydef(c.oid)
     FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1`,
  `SELECT t.typname, r.rngsubtype::regtype::text, r.rngsubdiff::regproc::text FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid
     WHERE t.typnamespace = 'public'::regnamespace ORDER BY 1`,
  "SELECT pg_describe_object(classoid, objoid, objsubid) AS object, description FROM pg_description WHERE objoid >= 16384 ORDER BY 1",
  "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
];

async function asSuperuser<T>(db: TestDatabase, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return superuser(work, db.name);
}

/** Every table's rows as one hash, ONLY the table itself. */
async function rowHashes(db: TestDatabase): Promise<Record<string, string | null>> {
  return asSuperuser(db, async (client) => {
    const tables = await client.query<{ t: string }>(
      "SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    const hashes: Record<string, string | null> = {};
    for (const { t } of tables.rows) {
      const { rows } = await client.query<{ h: string | null; n: string }>(
        `SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h, count(*)::text AS n FROM ONLY public.${t} x`,
      );
      hashes[t] = `${rows[0]?.n}:${rows[0]?.h}`;
    }
    return hashes;
  });
}

async function dump(url: string): Promise<string> {
  let text = "";
  for await (const chunk of exportDatabase(url, { pageBytes: 4 * 1024 }).chunks) text += chunk;
  return text;
}

beforeAll(async () => {
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  source = await createTestDatabase("exp_fid_src");
  target = await createRestoreTarget("exp_fid_dst");
  dir = await mkdtemp(join(tmpdir(), "tenantry-fidelity-"));
  const client = new pg.Client({ connectionString: source.url });
  await client.connect();
  try {
    await client.query(SETUP);
  } finally {
    await client.end();
  }
});

afterAll(async () => {
  await dropTestDatabase(source);
  await dropTestDatabase(target);
  await rm(dir, { recursive: true, force: true });
});

describe("schema fidelity", () => {
  it("without BYPASSRLS, a table whose policies hide rows fails the export rather than lose them", async () => {
    await expect(dump(source.url)).rejects.toThrow(/row-level security/);
  });

  it("restores the same catalogs and rows", async () => {
    await superuser((client) => client.query(`ALTER ROLE ${source.role} BYPASSRLS`));
    const text = await dump(source.url);
    const file = join(dir, "dump.sql");
    await writeFile(file, text);
    await restoreDump(file, target.url);
    for (const query of CATALOG) {
      const [a, b] = await Promise.all([
        asSuperuser(source, (c) => c.query({ text: query, rowMode: "array" })),
        asSuperuser(target, (c) => c.query({ text: query, rowMode: "array" })),
      ]);
      expect(a.rows.length, query).toBeGreaterThan(0);
      expect(b.rows, query).toEqual(a.rows);
    }
    const [a, b] = await Promise.all([rowHashes(source), rowHashes(target)]);
    expect(Object.keys(a).sort()).toEqual([
      "bookings",
      "journal",
      "readings",
      "readings_2025",
      "readings_2026",
      "readings_2026_h0",
      "readings_2026_h1",
      "readings_other",
      "rooms",
      "trucks",
      "vehicles",
    ]);
    expect(b).toEqual(a);
    // The disabled trigger stayed disabled, the enabled one fires, the rule runs, the deferred
    // foreign key and the exclusion constraint work in the copy.
    await asSuperuser(target, async (c) => {
      await c.query("UPDATE bookings SET weight = NULL WHERE id = 3");
      const touched = await c.query("SELECT updated_at IS NOT NULL AS t FROM bookings WHERE id = 3");
      expect(touched.rows[0]?.t).toBe(true);
      await c.query("DELETE FROM rooms WHERE id = 2");
      const notes = await c.query("SELECT note FROM journal ORDER BY id");
      expect(notes.rows.map((r) => r.note)).toEqual(["first", "deleted hidden"]);
      await expect(
        c.query("INSERT INTO bookings (room, during) VALUES (1, '[2026-01-01 10:30, 2026-01-01 10:45)')"),
      ).rejects.toThrow(/bookings_no_overlap/);
    });
  }, 120_000);
});
