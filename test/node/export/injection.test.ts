/**
 * Injection into the dump: a tenant controls its database's name, its ledger rows, every
 * identifier, enum label, default, constraint expression, comment and value, and the customer runs
 * the dump through `psql`, where a backslash outside a quoted token is a meta-command (`\! cmd`
 * runs a shell command). Here all of those hold a newline followed by `\! touch pwned` (and quote
 * tricks around it), the export is restored with `psql -v ON_ERROR_STOP=1` reading the dump on
 * stdin, as the README's restore does, in a directory where `pwned` would appear, and:
 * - the file never appears (and, as a control, the same payload written raw after a `--` comment
 *   does create it: the check can fail);
 * - the restore succeeds and the restored database holds the same names, labels, comments,
 *   defaults and rows.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDatabase } from "../../../src/control/export/engine.ts";
import { ident, literal } from "../../../src/control/export/quote.ts";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import {
  createRestoreTarget,
  dropTestDatabase,
  gatewayUrl,
  postgresUrl,
  superuser,
  type TestDatabase,
} from "../support.ts";

const run = promisify(execFile);

/** A newline, then the meta-command: what a raw interpolation would hand psql as its own line. */
const BANG = "\n\\! touch pwned\n";
/** The same with quote tricks around it, for names and text that might be quoted naively. */
const TRICKS = [
  BANG,
  `'${BANG}`,
  `"${BANG}"`,
  `\\'${BANG}--`,
  `$$${BANG}$$`,
  `*/${BANG}/*`,
  "\r\\! touch pwned\r",
  `\\.${BANG}`,
  `E'\\\\'${BANG}`,
];

const names = (base: string) => TRICKS.map((trick, i) => `${base}${i}${trick}`);

let dir: string;
let source: TestDatabase;
let target: TestDatabase;

/** A database whose name itself holds the payload, owned by a fresh role (as createTestDatabase). */
async function hostileDatabase(): Promise<TestDatabase> {
  const suffix = randomBytes(4).toString("hex");
  const name = `exp_inj_${suffix}${BANG}'"`;
  const role = `exp_inj_role_${suffix}`;
  const password = randomBytes(12).toString("hex");
  await superuser(async (client) => {
    await client.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await client.query(`CREATE DATABASE ${ident(name)} OWNER ${role}`);
  });
  const base = new URL(postgresUrl());
  return { name, role, password, url: `postgresql://${role}:${password}@${base.host}/${encodeURIComponent(name)}` };
}

const SETUP = () => {
  const tables = names("t");
  const cols = names("c");
  const labels = names("l");
  return [
    // The ledger the header names its newest row from.
    "CREATE SCHEMA tenantry",
    "CREATE TABLE tenantry.migrations (name text PRIMARY KEY)",
    `INSERT INTO tenantry.migrations VALUES ('0001_init'), (${literal(`9999${BANG}'`)})`,
    `CREATE SCHEMA ${ident(`s${BANG}"'`)}`,
    `CREATE TYPE public.${ident(`e${BANG}`)} AS ENUM (${labels.map(literal).join(", ")})`,
    `CREATE DOMAIN public.${ident(`d${BANG}`)} AS text DEFAULT ${literal(BANG)}
       CONSTRAINT ${ident(`dc${BANG}`)} CHECK (VALUE <> ${literal(`$$${BANG}`)})`,
    `CREATE TYPE public.${ident(`ct${BANG}`)} AS (${ident(`a${BANG}`)} int, ${ident(`b'${BANG}`)} text)`,
    `CREATE SEQUENCE ${ident(`s${BANG}"'`)}.${ident(`q${BANG}`)}`,
    ...tables.map(
      (t, i) => `CREATE TABLE ${ident(`s${BANG}"'`)}.${ident(t)} (
         id int PRIMARY KEY,
         ${ident(cols[i] ?? "")} text DEFAULT ${literal(TRICKS[i] ?? "")} CHECK (${ident(cols[i] ?? "")} <> ${literal(`x${TRICKS[i]}`)}),
         e public.${ident(`e${BANG}`)},
         d public.${ident(`d${BANG}`)},
         ct public.${ident(`ct${BANG}`)}
       )`,
    ),
    `CREATE INDEX ${ident(`i${BANG}`)} ON ${ident(`s${BANG}"'`)}.${ident(tables[0] ?? "")} ((${ident(cols[0] ?? "")} || ${literal(BANG)}))`,
    `CREATE VIEW public.${ident(`v${BANG}`)} AS SELECT ${literal(`\\${BANG}'`)}::text AS ${ident(`vc${BANG}`)}`,
    ...tables.flatMap((t, i) => [
      `INSERT INTO ${ident(`s${BANG}"'`)}.${ident(t)} VALUES (1, ${literal(TRICKS[i] ?? "")}, ${literal(labels[i] ?? "")}, ${literal(`v${TRICKS[i]}`)}, ROW(1, ${literal(TRICKS[i] ?? "")}))`,
      `INSERT INTO ${ident(`s${BANG}"'`)}.${ident(t)} (id) VALUES (2)`,
    ]),
    `SELECT nextval(${literal(`${ident(`s${BANG}"'`)}.${ident(`q${BANG}`)}`)})`,
    // A comment on every kind of object the dump comments.
    `COMMENT ON SCHEMA ${ident(`s${BANG}"'`)} IS ${literal(`schema${BANG}`)}`,
    `COMMENT ON TYPE public.${ident(`e${BANG}`)} IS ${literal(`enum'${BANG}`)}`,
    `COMMENT ON DOMAIN public.${ident(`d${BANG}`)} IS ${literal(`domain\\${BANG}`)}`,
    `COMMENT ON CONSTRAINT ${ident(`dc${BANG}`)} ON DOMAIN public.${ident(`d${BANG}`)} IS ${literal(`dcon${BANG}`)}`,
    `COMMENT ON TYPE public.${ident(`ct${BANG}`)} IS ${literal(`composite${BANG}`)}`,
    `COMMENT ON SEQUENCE ${ident(`s${BANG}"'`)}.${ident(`q${BANG}`)} IS ${literal(`seq${BANG}`)}`,
    ...tables.flatMap((t, i) => [
      `COMMENT ON TABLE ${ident(`s${BANG}"'`)}.${ident(t)} IS ${literal(`table${TRICKS[i]}`)}`,
      `COMMENT ON COLUMN ${ident(`s${BANG}"'`)}.${ident(t)}.${ident(cols[i] ?? "")} IS ${literal(`column${TRICKS[i]}`)}`,
      `COMMENT ON CONSTRAINT ${ident(`${t}_pkey`)} ON ${ident(`s${BANG}"'`)}.${ident(t)} IS ${literal(`pkey${TRICKS[i]}`)}`,
    ]),
    `COMMENT ON INDEX ${ident(`s${BANG}"'`)}.${ident(`i${BANG}`)} IS ${literal(`index${BANG}`)}`,
    `COMMENT ON VIEW public.${ident(`v${BANG}`)} IS ${literal(`view${BANG}`)}`,
  ];
};

beforeAll(async () => {
  // HTTP for the queries, the WebSocket session for the export's snapshot: both to the gateway.
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  dir = await mkdtemp(join(tmpdir(), "tenantry-inj-"));
  source = await hostileDatabase();
  target = await createRestoreTarget("exp_inj_dst");
  const sql = neon(source.url);
  for (const statement of SETUP()) await sql.query(statement);
});

afterAll(async () => {
  await superuser(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${ident(source.name)} WITH (FORCE)`);
    await client.query(`DROP ROLE IF EXISTS ${source.role}`);
  });
  await dropTestDatabase(target);
  await rm(dir, { recursive: true, force: true });
});

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** `psql -v ON_ERROR_STOP=1` reading `file` on stdin, in `dir` (where `touch pwned` would write). */
const restore = (file: string, url: string) =>
  run("bash", ["-o", "pipefail", "-c", 'psql -X -q -v ON_ERROR_STOP=1 -d "$2" < "$1"', "restore", file, url], {
    cwd: dir,
    maxBuffer: 64 * 1024 * 1024,
  });

/** What each side holds that the payload is in: names, labels, comments, defaults, checks, rows. */
const CATALOG = [
  `SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'tenantry') ORDER BY 1, 2`,
  `SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY 1, e.enumsortorder`,
  `SELECT d.classoid::regclass::text AS catalog, d.objsubid, d.description,
          coalesce(c.relname, t.typname, n.nspname, con.conname) AS name
     FROM pg_description d LEFT JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
     LEFT JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
     LEFT JOIN pg_namespace n ON d.classoid = 'pg_namespace'::regclass AND n.oid = d.objoid
     LEFT JOIN pg_constraint con ON d.classoid = 'pg_constraint'::regclass AND con.oid = d.objoid
    WHERE d.objoid >= 16384 ORDER BY 4, 3, 2`,
  `SELECT table_schema, table_name, column_name, column_default FROM information_schema.columns
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'tenantry') ORDER BY 1, 2, 3`,
  `SELECT con.conname, pg_get_constraintdef(con.oid) FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantry') ORDER BY 1`,
  "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'tenantry') ORDER BY 1",
  "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
];

describe("a hostile database's export", () => {
  it("the payload works when written raw: the check below can fail", async () => {
    const file = join(dir, "raw.sql");
    await writeFile(file, `-- export of database exp_inj${BANG}SELECT 1;\n`);
    await restore(file, target.url);
    expect(await exists(join(dir, "pwned"))).toBe(true);
    await rm(join(dir, "pwned"));
  });

  it("restores with psql -v ON_ERROR_STOP=1 without running anything, names and comments intact", async () => {
    const exporter = exportDatabase(source.url, { pageBytes: 16 * 1024 });
    let text = "";
    for await (const chunk of exporter.chunks) text += chunk;
    // The header names the database and the newest ledger row, on one comment line.
    const [header, second] = text.split("\n");
    expect(header).toBe(
      `-- Tenantry export of database ${source.name.replaceAll("\n", "\\x0a")} (Postgres ${header?.match(/Postgres ([^)]*)\)/)?.[1]}), schema version 9999\\x0a\\! touch pwned\\x0a'`,
    );
    expect(second).toMatch(/^-- Restore into an empty database/);
    expect(text).toContain("COMMENT ON ");

    expect(await exists(join(dir, "pwned"))).toBe(false);
    const file = join(dir, "dump.sql");
    await writeFile(file, text);
    await restore(file, target.url);
    expect(await exists(join(dir, "pwned"))).toBe(false);

    for (const query of CATALOG) {
      const [a, b] = await Promise.all([neon(source.url).query(query), neon(target.url).query(query)]);
      expect(b.length, query).toBeGreaterThan(0);
      expect(b, query).toEqual(a);
    }
    const restored = exportDatabase(target.url, { pageBytes: 16 * 1024 });
    for await (const _ of restored.chunks);
    expect(restored.stats().tables).toEqual(exporter.stats().tables);
    expect(exporter.stats().rows).toBe(TRICKS.length * 2);
  });
});
