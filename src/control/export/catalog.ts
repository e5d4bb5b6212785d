/**
 * Catalog reading: what the export learns about a tenant's database before it writes a line (its
 * schemas, enums, domains, composite types, sequences, tables with their columns and primary keys,
 * constraints, indexes and views), each as a plain value the DDL renderer (ddl.ts) turns into SQL
 * and the page reader (pages.ts) reads rows by. All I/O against the catalogs is here, and nothing
 * else: one request per query, in the order the dump needs them.
 *
 * Catalog queries run with an empty search_path (in the same transaction), so pg_get_expr,
 * format_type and friends schema-qualify every name, as pg_dump does: the dump restores with
 * `search_path = ''` whatever the target's settings. Where Postgres renders a whole fragment of
 * SQL (pg_get_constraintdef, pg_get_expr, format_type…), the value carries that text as is; every
 * bare name or label is read raw and quoted by quote.ts, the dump's one quoting path.
 */
import { literal, qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface Column {
  name: string;
  type: string;
  typeOid: number;
  /** The type's output function, when a `::text` cast would not call it (see copyField). */
  textOut: string | null;
  notNull: boolean;
  default: string | null;
  /** `pg_attribute.attidentity`: "a" (always), "d" (by default) or "" (none). */
  identity: string;
  /** `pg_attribute.attgenerated`: "s" (stored) or "" (none). */
  generated: string;
  /** Qualified and quoted, when not the type's default collation. */
  collation: string | null;
  /** Defined by the table itself, not only inherited from a parent (see inheritance.ts). */
  local: boolean;
}

export interface Table {
  oid: string;
  schema: string;
  name: string;
  /** `pg_class.relkind`: r (table) or p (partitioned: its partitions' rows are read through it). */
  kind: string;
  columns: Column[];
  /** Primary key columns with their types, for keyset pagination (empty: paginate by ctid). */
  key: { name: string; type: string }[];
  /** Size on disk (heap, TOAST and indexes, of every partition) and the planner's row estimate (0: unknown). */
  diskBytes: number;
  tuples: number;
}

export interface ServerMeta {
  readonly db: string;
  readonly version: string;
}

export interface EnumType {
  readonly schema: string;
  readonly name: string;
  /** The labels in sort order, raw. */
  readonly labels: string[];
}

export interface Domain {
  readonly schema: string;
  readonly name: string;
  /** The base type, formatted. */
  readonly base: string;
  readonly notNull: boolean;
  readonly default: string | null;
  /** Its constraints by name: the raw name and pg_get_constraintdef's `CHECK (…)` text. */
  readonly checks: { name: string; def: string }[];
}

export interface CompositeType {
  readonly schema: string;
  readonly name: string;
  /** The attributes in order: the raw name and the formatted type. */
  readonly attrs: { name: string; type: string }[];
}

/** A sequence that is not an identity sequence (those come with their column). */
export interface Sequence {
  readonly schema: string;
  readonly name: string;
  readonly type: string;
  readonly start: string;
  readonly increment: string;
  readonly min: string;
  readonly max: string;
  readonly cache: string;
  readonly cycle: boolean;
  /** The last value handed out (null: never called). */
  readonly last: string | null;
  /** The owning column (`OWNED BY`): its table qualified and quoted, its name unquoted. */
  readonly ownerTable: string | null;
  readonly ownerColumn: string | null;
}

export interface Constraint {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  /** pg_get_constraintdef's text. */
  readonly def: string;
  /** `pg_constraint.contype`: p, u, x, c or f. */
  readonly contype: string;
}

/** A json_agg result as the driver hands it over (text, null for no rows) parsed: [] for none. */
const parseList = <T>(json: string | null): T[] => (json === null ? [] : (JSON.parse(json) as T[]));

/** One catalog query, in the export's snapshot with the search_path emptied (see snapshot.ts). */
export const rows = <T>(sql: ExportSql, text: string, params: unknown[] = []): Promise<T[]> =>
  sql.rows<T>(text, params);

/** The condition on `n.nspname` that leaves out the system schemas and `exclude`. */
export function schemaFilter(exclude: readonly string[]): string {
  const list = ["pg_catalog", "information_schema", "pg_toast", ...exclude].map(literal).join(", ");
  return `NOT IN (${list}) AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`;
}

/** The last migration applied by Tenantry's ledger, or null without a ledger (or an empty one). */
export async function readSchemaVersion(sql: ExportSql): Promise<string | null> {
  const [ledger] = await rows<{ present: string }>(
    sql,
    "SELECT (to_regclass('tenantry.migrations') IS NOT NULL)::text AS present",
  );
  if (ledger?.present !== "true") return null;
  const [last] = await rows<{ name: string }>(sql, "SELECT name FROM tenantry.migrations ORDER BY name DESC LIMIT 1");
  return last?.name ?? null;
}

export async function readServerMeta(sql: ExportSql): Promise<ServerMeta | undefined> {
  const [meta] = await rows<ServerMeta>(
    sql,
    "SELECT current_database() AS db, current_setting('server_version') AS version",
  );
  return meta;
}

/** Schemas other than public. */
export async function readSchemas(sql: ExportSql, nsFilter: string): Promise<string[]> {
  const schemas = await rows<{ nspname: string }>(
    sql,
    `SELECT n.nspname FROM pg_namespace n WHERE n.nspname ${nsFilter} AND n.nspname <> 'public' ORDER BY n.nspname`,
  );
  return schemas.map((s) => s.nspname);
}

export async function readEnums(sql: ExportSql, nsFilter: string): Promise<EnumType[]> {
  const enums = await rows<{ schema: string; name: string; labels: string | null }>(
    sql,
    `SELECT n.nspname AS schema, t.typname AS name,
              (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE t.typtype = 'e' AND n.nspname ${nsFilter} ORDER BY t.oid`,
  );
  return enums.map((e) => ({ schema: e.schema, name: e.name, labels: parseList<string>(e.labels) }));
}

export async function readDomains(sql: ExportSql, nsFilter: string): Promise<Domain[]> {
  const domains = await rows<{
    schema: string;
    name: string;
    base: string;
    notnull: string;
    def: string | null;
    checks: string | null;
  }>(
    sql,
    `SELECT n.nspname AS schema, t.typname AS name, format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull::text AS notnull,
              t.typdefault AS def,
              (SELECT json_agg(json_build_object('name', c.conname, 'def', pg_get_constraintdef(c.oid)) ORDER BY c.conname)
                 FROM pg_constraint c WHERE c.contypid = t.oid) AS checks
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE t.typtype = 'd' AND n.nspname ${nsFilter} ORDER BY t.oid`,
  );
  return domains.map((d) => ({
    schema: d.schema,
    name: d.name,
    base: d.base,
    notNull: d.notnull === "true",
    default: d.def,
    checks: parseList<{ name: string; def: string }>(d.checks),
  }));
}

/** Composite types (not table row types). */
export async function readComposites(sql: ExportSql, nsFilter: string): Promise<CompositeType[]> {
  const composites = await rows<{ schema: string; name: string; attrs: string | null }>(
    sql,
    `SELECT n.nspname AS schema, t.typname AS name,
              (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attrs
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
       WHERE t.typtype = 'c' AND c.relkind = 'c' AND n.nspname ${nsFilter} ORDER BY t.oid`,
  );
  return composites.map((c) => ({ schema: c.schema, name: c.name, attrs: parseList(c.attrs) }));
}

/** Sequences that are not identity sequences (identity ones come with their column). */
export async function readSequences(sql: ExportSql, nsFilter: string): Promise<Sequence[]> {
  const sequences = await rows<{
    schema: string;
    name: string;
    type: string;
    start: string;
    increment: string;
    min: string;
    max: string;
    cache: string;
    cycle: string;
    last: string | null;
    owner_schema: string | null;
    owner_table: string | null;
    owner_column: string | null;
  }>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start,
              s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache,
              s.seqcycle::text AS cycle, ps.last_value::text AS last,
              tn.nspname AS owner_schema, t.relname AS owner_table, a.attname AS owner_column
       FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = c.relname
       LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       WHERE n.nspname ${nsFilter} AND (d.deptype IS NULL OR d.deptype = 'a') ORDER BY c.oid`,
  );
  return sequences.map((s) => ({
    schema: s.schema,
    name: s.name,
    type: s.type,
    start: s.start,
    increment: s.increment,
    min: s.min,
    max: s.max,
    cache: s.cache,
    cycle: s.cycle === "true",
    last: s.last,
    ownerTable: s.owner_schema !== null && s.owner_table !== null ? qualified(s.owner_schema, s.owner_table) : null,
    ownerColumn: s.owner_column,
  }));
}

/** Ordinary and partitioned tables and partitions, by schema and name, each with its columns and key. */
export async function readTables(sql: ExportSql, nsFilter: string): Promise<Table[]> {
  const tableRows = await rows<{
    oid: string;
    schema: string;
    name: string;
    kind: string;
    bytes: string | null;
    tuples: string | null;
  }>(
    sql,
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT sum(pg_total_relation_size(t.relid))::text FROM pg_partition_tree(c.oid) t)
                   ELSE pg_total_relation_size(c.oid)::text END AS bytes,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT sum(greatest(pc.reltuples, 0))::text FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid)
                   ELSE greatest(c.reltuples, 0)::text END AS tuples
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname ${nsFilter} ORDER BY n.nspname, c.relname`,
  );
  const tables: Table[] = [];
  for (const t of tableRows) {
    const columns = await readColumns(sql, t.oid);
    const key = await readKey(sql, t.oid);
    tables.push({
      oid: t.oid,
      schema: t.schema,
      name: t.name,
      kind: t.kind,
      diskBytes: Number(t.bytes ?? 0),
      tuples: Number(t.tuples ?? 0),
      columns,
      key,
    });
  }
  return tables;
}

async function readColumns(sql: ExportSql, tableOid: string): Promise<Column[]> {
  const columns = await rows<{
    name: string;
    type: string;
    typeoid: string;
    textout: string | null;
    notnull: string;
    def: string | null;
    identity: string;
    generated: string;
    collation: string | null;
    local: string;
  }>(
    sql,
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid::text AS typeoid,
                CASE WHEN EXISTS (SELECT 1 FROM pg_cast ca WHERE ca.castsource = coalesce(nullif(ty.typbasetype, 0), a.atttypid)
                                    AND ca.casttarget = 'pg_catalog.text'::regtype AND ca.castmethod = 'f')
                     THEN (SELECT json_build_array(pn.nspname, p.proname) FROM pg_proc p
                           JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = ty.typoutput) END AS textout,
                a.attnotnull::text AS notnull,
                pg_get_expr(ad.adbin, ad.adrelid) AS def, a.attidentity::text AS identity, a.attgenerated::text AS generated, a.attislocal::text AS local,
                CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                     THEN json_build_array(cn.nspname, co.collname) END AS collation
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [tableOid],
  );
  return columns.map((c) => ({
    name: c.name,
    type: c.type,
    typeOid: Number(c.typeoid),
    textOut: qualifiedPair(c.textout),
    notNull: c.notnull === "true",
    default: c.def,
    identity: c.identity,
    generated: c.generated,
    collation: qualifiedPair(c.collation),
    local: c.local === "true",
  }));
}

/** A `[schema, name]` JSON pair (see readColumns) qualified and quoted, or null. */
function qualifiedPair(json: string | null): string | null {
  if (json === null) return null;
  const [schema, name] = JSON.parse(json) as [string, string];
  return qualified(schema, name);
}

/** The primary key's columns in key order, with their types (empty: no primary key). */
function readKey(sql: ExportSql, tableOid: string): Promise<{ name: string; type: string }[]> {
  return rows<{ name: string; type: string }>(
    sql,
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord`,
    [tableOid],
  );
}

/** The last value of an identity column's sequence (null or undefined: never called). */
export async function readIdentityLast(
  sql: ExportSql,
  table: string,
  column: string,
): Promise<string | null | undefined> {
  const [state] = await rows<{ last: string | null }>(
    sql,
    `SELECT last_value::text AS last FROM pg_sequences WHERE schemaname || '.' || sequencename = (
             SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = pg_get_serial_sequence($1, $2)::regclass)`,
    [table, column],
  );
  return state?.last;
}

/** Keys, exclusions and checks, foreign keys last: the order they can be added in. */
export function readConstraints(sql: ExportSql, nsFilter: string): Promise<Constraint[]> {
  return rows<Constraint>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, pg_get_constraintdef(con.oid) AS def, con.contype::text AS contype
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE con.contype IN ('p', 'u', 'c', 'x', 'f') AND n.nspname ${nsFilter} AND con.conislocal AND con.conparentid = 0 AND NOT (con.contype = 'c' AND con.coninhcount > 0)
       ORDER BY CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, n.nspname, c.relname, con.conname`,
  );
}

/** Indexes that no constraint owns, as pg_get_indexdef's `CREATE INDEX …` text. */
export async function readIndexes(sql: ExportSql, nsFilter: string): Promise<string[]> {
  const indexes = await rows<{ def: string }>(
    sql,
    // On a partitioned table, without ONLY: the index is built on every partition too (partitions.ts).
    `SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^(CREATE (UNIQUE )?INDEX ("([^"]|"")*"|[^ ]+) ON )ONLY ', '\\1') AS def
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname ${nsFilter} AND NOT c.relispartition AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
       ORDER BY n.nspname, c.relname`,
  );
  return indexes.map((i) => i.def);
}
