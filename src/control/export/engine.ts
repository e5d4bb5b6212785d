/**
 * pg_dump-style export over Neon's HTTP driver (no COPY over HTTP, responses size-capped): the
 * schema from the catalogs and the data as `COPY … FROM stdin` blocks, in an order that restores with
 * `psql -v ON_ERROR_STOP=1` into any Postgres: types and sequences, tables (columns, defaults,
 * identity and generated columns, NOT NULL), data, then sequence values, constraints (primary and
 * unique keys, checks, foreign keys last), indexes and views.
 *
 * Why COPY blocks rather than INSERTs: the text is the type's own output, which COPY's input reads
 * back exactly (no quoting rules per type, no statement per row), the file is far smaller and it
 * restores an order of magnitude faster.
 *
 * Postgres builds each row's COPY line itself (every value through its type's output function,
 * escaped the way `COPY … TO` escapes it, tab-separated, `\N` for NULL) and joins a page of lines
 * into one string, so the Worker carries one value per page instead of one per value: its CPU
 * (which Workers meter) goes into moving text, not into formatting it. The data blocks are byte
 * for byte what `COPY … TO STDOUT` writes.
 *
 * Memory stays flat whatever the tenant's size: rows are read in pages of about `pageBytes`
 * (the page size adapts to the row size), at most PAGES_IN_FLIGHT + 1 pages at a time. Tables with
 * a primary key are cut into key ranges ahead of time, so Postgres builds the next pages while one
 * is checked and written; tables without one are paged by ctid. Each table gets a row count and an
 * order-independent checksum of its COPY lines (see TableChecksum), so an export of the restored
 * database can be compared with the original.
 *
 * Consistency: each page is its own transaction (HTTP has no sessions), so rows written during an
 * export may or may not appear; export from a quiet tenant, or a Neon branch, for a point-in-time copy.
 */
import { Buffer } from "node:buffer";
import { type NeonQueryFunction, neon } from "@neondatabase/serverless";

type RawSql = NeonQueryFunction<false, false>;

export interface TableManifest {
  readonly name: string;
  readonly rows: number;
  /** 16 hex digits, order-independent: equal for equal sets of rows, whatever the page boundaries. */
  readonly checksum: string;
  readonly bytes: number;
}

export interface ExportStats {
  readonly tables: TableManifest[];
  readonly rows: number;
  readonly bytes: number;
  readonly schemaVersion: string | null;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly ms: number;
}

export interface ExportOptions {
  /**
   * Target size of one page of rows, in bytes of COPY text (default 2 MiB: well under the 10 MB
   * response cap of older Neon docs, and few enough requests that per-request costs stay small).
   */
  readonly pageBytes?: number;
  /** Schemas left out (default: `tenantry`, the migration ledger). */
  readonly excludeSchemas?: readonly string[];
  /** Called after every page, for progress. */
  readonly onProgress?: (table: string, rows: number) => void;
}

/** Every value as Postgres prints it: the driver must not parse anything. */
const RAW_TYPES = { getTypeParser: () => (value: string) => value };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;
const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;

/**
 * Type OIDs whose text output never holds a backslash, tab, newline, carriage return, backspace,
 * form feed or vertical tab, so their COPY text needs no escaping: bool, int8, int2, int4, oid,
 * float4, float8, date, time, timestamp, timestamptz, interval, timetz, numeric, uuid, and the
 * arrays of these. Every other type (text, json, bytea, enums, domains, composites …) is escaped.
 */
const PLAIN_TYPES = new Set([
  16, 20, 21, 23, 26, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 1000, 1016, 1005, 1007, 1028, 1021,
  1022, 1182, 1183, 1115, 1185, 1187, 1270, 1231, 2951,
]);

/**
 * Types whose text output can hold a backslash but never a control character: bytea (hex, or
 * octal escapes) and jsonb (its output escapes every control character inside strings). Only the
 * backslash needs escaping, one `replace` instead of seven: jsonb is often a tenant's widest column.
 */
const BACKSLASH_ONLY_TYPES = new Set([17, 3802]);

/** How a type's text output is escaped for COPY (see copyField). */
type FieldKind = "plain" | "backslash" | "text";

const fieldKind = (typeOid: number): FieldKind =>
  PLAIN_TYPES.has(typeOid) ? "plain" : BACKSLASH_ONLY_TYPES.has(typeOid) ? "backslash" : "text";

/**
 * The column's value as text, through its type's output function, in C collation: `replace` and
 * `strpos` refuse a column's nondeterministic collation ("not supported for substring searches").
 */
function textOf(column: Column): string {
  // `::text` is the output function except where a cast function exists (bool gives "true",
  // inet adds the mask, char(n) drops its padding): those call their output function directly.
  const value = column.textOut ? `textin(${column.textOut}(${ident(column.name)}))` : `${ident(column.name)}::text`;
  return `${value} COLLATE "C"`;
}

/**
 * SQL for one value as a field of a COPY text line (https://www.postgresql.org/docs/current/sql-copy.html,
 * "File Formats"): the type's text output with backslash first, then newline, carriage return and
 * tab escaped, `\N` for NULL. `COPY … TO` also escapes backspace, form feed and vertical tab; those
 * can never be a line's structure, so `escapeRareControls` does them on the whole page, which costs
 * one scan instead of three more `replace` calls per value.
 *
 * With `escapeControls` false, a text-like value gets its backslashes escaped only: the page is read
 * on the bet that none of its values holds a newline, carriage return or tab, and `unescapedPageHolds`
 * checks the bet on the page (see pageReader). Three `replace` calls fewer per value, for the most
 * common columns of all (names, emails, labels).
 */
function copyField(column: Column, escapeControls: boolean): string {
  const kind = fieldKind(column.typeOid);
  // concat_ws prints a non-NULL value of any type with the type's output function itself.
  if (kind === "plain" && column.notNull) return ident(column.name);
  let value = textOf(column);
  if (kind !== "plain") value = `replace(${value}, E'\\\\', E'\\\\\\\\')`;
  if (kind === "text" && escapeControls) {
    for (const [char, escaped] of [
      ["\\n", "\\\\n"],
      ["\\r", "\\\\r"],
      ["\\t", "\\\\t"],
    ]) {
      value = `replace(${value}, E'${char}', E'${escaped}')`;
    }
  }
  return column.notNull ? value : `coalesce(${value}, E'\\\\N')`;
}

/** concat_ws takes at most 99 values (FUNC_MAX_ARGS): wider rows are joined in groups. */
const CONCAT_GROUP = 90;

/**
 * SQL for a row's whole COPY text line (no newline): the fields joined by tabs with concat_ws, one
 * pass over the row (a chain of `||` copies the growing line once per field). Text-like columns in
 * `dirty` get newline, carriage return and tab escaped; the others only their backslashes.
 */
function copyLine(columns: readonly Column[], dirty: ReadonlySet<string> | "all"): string {
  if (columns.length === 0) return "''";
  const fields = columns.map((c) => copyField(c, dirty === "all" || dirty.has(c.name)));
  const groups: string[] = [];
  for (let i = 0; i < fields.length; i += CONCAT_GROUP) {
    groups.push(`concat_ws(E'\\t', ${fields.slice(i, i + CONCAT_GROUP).join(", ")})`);
  }
  return groups.length === 1 ? (groups[0] as string) : `concat_ws(E'\\t', ${groups.join(", ")})`;
}

/**
 * Whether a page read without newline, carriage return and tab escaping (see copyField) is exactly
 * what escaping would have written: `rows` lines, `rows × (columns − 1)` tabs and no carriage return
 * mean no value held one of them.
 */
function unescapedPageHolds(text: string, rows: number, columns: number): boolean {
  if (text.indexOf("\r") >= 0) return false;
  if (countLines(text) !== rows) return false;
  const expected = rows * (columns - 1);
  let tabs = 0;
  for (let at = text.indexOf("\t"); at >= 0 && tabs <= expected; at = text.indexOf("\t", at + 1)) tabs++;
  return tabs === expected;
}

const RARE_CONTROLS_ALL = /[\b\f\v]/g;
const RARE_ESCAPES: Record<string, string> = { "\b": "\\b", "\f": "\\f", "\v": "\\v" };

/** Backspace, form feed and vertical tab as `COPY … TO` writes them (see copyField). */
function escapeRareControls(text: string): string {
  // Three indexOf scans are ~20× faster than one regular expression test on a page of text.
  if (text.indexOf("\b") < 0 && text.indexOf("\f") < 0 && text.indexOf("\v") < 0) return text;
  return text.replace(RARE_CONTROLS_ALL, (char) => RARE_ESCAPES[char] ?? char);
}

/** Lines in a page of text, each ending in a newline. */
function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

/**
 * A table's checksum: the sum, mod 2^64, of a 64-bit hash of every COPY line (Postgres's
 * `hashtextextended`, summed per page by the query that builds the page), as 16 hex digits. Equal
 * sets of lines give equal sums whatever their order or page boundaries; it detects accidental
 * differences, it is not a cryptographic digest. Hashing in Postgres, in C, costs a fraction of
 * what hashing every character in JavaScript cost the Worker.
 */
class TableChecksum {
  private sum = 0n;

  /** Adds a page's sum of line hashes (a decimal integer, possibly negative). */
  add(pageSum: string): void {
    this.sum = BigInt.asUintN(64, this.sum + BigInt(pageSum));
  }

  hex(): string {
    return this.sum.toString(16).padStart(16, "0");
  }
}

interface Column {
  name: string;
  type: string;
  typeOid: number;
  /** The type's output function, when a `::text` cast would not call it (see copyField). */
  textOut: string | null;
  notNull: boolean;
  default: string | null;
  identity: string;
  generated: string;
  collation: string | null;
}

interface Table {
  oid: string;
  schema: string;
  name: string;
  columns: Column[];
  /** Primary key columns with their types, for keyset pagination (empty: paginate by ctid). */
  key: { name: string; type: string }[];
  /** Size on disk (heap, TOAST and indexes, of every partition) and the planner's row estimate (0: unknown). */
  diskBytes: number;
  tuples: number;
}

/**
 * Rows in a table's first pages, before any page has been read: what fits `pageBytes` if a row's
 * COPY text were 4× its share of the table's size on disk (TOAST compresses wide values), at most
 * 500. Without a row estimate (never analyzed), the whole table counts as one row. A table of a
 * few huge rows starts with pages of one row, not 500 of them.
 */
function firstLimit(pageBytes: number, diskBytes: number, tuples: number): number {
  const perRow = tuples >= 1 ? diskBytes / tuples : diskBytes;
  return Math.max(1, Math.min(500, Math.floor(pageBytes / Math.max(1, perRow * 4))));
}

interface Page {
  readonly rows: number;
  /** The rows' COPY lines, each ending in a newline (Postgres adds the last one: no copy of the page here), in no particular order. */
  readonly lines: string;
  /** UTF-8 bytes of `lines`. */
  readonly bytes: number;
  /** The sum of the lines' 64-bit hashes, a decimal integer (see TableChecksum). */
  readonly hash: string;
}

/** A page as read: without a key, also its last ctid and the row limit it was asked with. */
interface ReadPage extends Page {
  readonly lastCtid?: string | undefined;
  readonly limit?: number | undefined;
}

/** Pages in flight at once on a keyed table: Postgres builds one while it sends another. */
const PAGES_IN_FLIGHT = 2;

/**
 * A table's rows as pages of COPY lines, each page about `pageBytes`. The first pages' row count
 * comes from the table's size on disk per row (see firstLimit), the next ones' from the bytes per
 * row of the last page read. One request per page: the row count and the lines joined into one
 * string (one value to carry instead of one per row).
 *
 * With a primary key the table is cut into key ranges ahead of time: a cheap keys-only query
 * finds where the next page ends, so the next ranges are requested while one is read, and
 * Postgres builds them in parallel. The ranges cover the key space without overlap, so every row
 * that exists throughout the export is read exactly once. Without a key, pages follow each other
 * by ctid, the next one requested as soon as a page arrives.
 *
 * Text-like columns are read without newline, carriage return and tab escaping until a page shows
 * that one of them holds such characters (see copyField): that page is read again with everything
 * escaped, which also tells which columns did, and those stay escaped for the rest of the table.
 */
function pageReader(sql: RawSql, table: Table, name: string, columns: readonly Column[], pageBytes: number) {
  const byKey = table.key.length > 0;
  // Qualified: a bare name in ORDER BY means an output column of that name first (`"id"::text` is
  // named "id"), and a key's text order is not its order.
  const keys = byKey ? table.key.map((k) => `${name}.${ident(k.name)}`) : [`${name}.ctid`];
  const tuple = `(${keys.join(", ")})`;
  const params = (from: number) => `(${table.key.map((k, i) => `$${from + i}::${k.type}`).join(", ")})`;
  const textLike = columns.filter((c) => fieldKind(c.typeOid) === "text");
  /** Text-like columns seen holding a newline, carriage return or tab: escaped in every later page. */
  const dirty = new Set<string>();
  const run = async (text: string, values: unknown[]) =>
    (await sql.query(text, values, { arrayMode: true, fullResults: false, types: RAW_TYPES })) as unknown as (
      | string
      | null
    )[][];
  /**
   * One page, its clean text-like columns read unescaped. If the page does not hold, it is read
   * again with everything escaped (`recheck`: the columns that were read unescaped), with a flag per
   * such column saying whether it held a control character.
   */
  const read = async (where: string[], values: unknown[], limit?: number, recheck?: Column[]): Promise<ReadPage> => {
    const escapeAll = recheck !== undefined;
    const clean = escapeAll ? [] : textLike.filter((c) => !dirty.has(c.name));
    const flags = recheck ?? [];
    // Per flagged column: did any value hold a newline, carriage return or tab.
    const held = (c: Column) => {
      const value = textOf(c);
      return `strpos(${value}, E'\\n') + strpos(${value}, E'\\r') + strpos(${value}, E'\\t') > 0`;
    };
    const flagsInner = flags.map((c, i) => `, (${held(c)}) AS f${i}`).join("");
    const flagsAgg = flags.map((_, i) => `, bool_or(f${i}) AS f${i}`).join("");
    const flagsOut = flags.map((_, i) => `, f${i}::text`).join("");
    const [row] = await run(
      // The rows are joined in whatever order Postgres reads them: nothing depends on it (COPY FROM,
      // the page bounds and the checksum ignore it), so none is forced on a keyed range.
      // Without a key, the page's last ctid is where the next one starts. OFFSET 0 (or the LIMIT)
      // keeps the rows' subquery from being merged into the aggregate, which would build every
      // line twice: once for the page, once for its hash.
      // The hash reads `line` in C collation: a column's nondeterministic collation must not blur it.
      `SELECT rows::text, octet_length(lines)::text, lines, ${byKey ? "NULL" : "last_ctid::text"}, hash::text${flagsOut}
       FROM (SELECT count(*) AS rows, string_agg(line, E'\\n') || E'\\n' AS lines, coalesce(sum(hashtextextended(line COLLATE "C", 0)), 0) AS hash
                    ${byKey ? "" : ", max(last_ctid) AS last_ctid"}${flagsAgg}
             FROM (SELECT ${byKey ? "" : `${name}.ctid AS last_ctid, `}${copyLine(columns, escapeAll ? "all" : dirty)} AS line${flagsInner}
                   FROM ${name} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
                   ${byKey ? "" : `ORDER BY ${keys.join(", ")}`} ${limit === undefined ? "OFFSET 0" : `LIMIT ${limit}`}) AS page) AS agg`,
      values,
    );
    const rows = Number(row?.[0] ?? 0);
    const lines = row?.[2] ?? "";
    if (clean.length > 0 && rows > 0) {
      if (!unescapedPageHolds(lines, rows, columns.length)) return read(where, values, limit, clean);
    } else if (rows > 0) {
      // Escaped, a page has exactly one line per row: anything else is a corrupt response.
      const lineCount = countLines(lines);
      if (lineCount !== rows) throw new Error(`${name}: a page of ${rows} rows held ${lineCount} lines`);
    }
    flags.forEach((column, i) => {
      if (row?.[5 + i] === "true") dirty.add(column.name);
    });
    const escaped = escapeRareControls(lines);
    return {
      rows,
      lines: escaped,
      bytes: escaped === lines ? Number(row?.[1] ?? 0) : Buffer.byteLength(escaped),
      hash: row?.[4] ?? "0",
      lastCtid: row?.[3] ?? undefined,
      limit,
    };
  };

  let limit = firstLimit(pageBytes, table.diskBytes, table.tuples);
  const queue: Promise<ReadPage>[] = [];
  const enqueue = (page: Promise<ReadPage>) => {
    // Awaited in turn: a failure surfaces there, not as an unhandled rejection.
    page.catch(() => {});
    queue.push(page);
  };
  let start: (string | null)[] | undefined;
  let exhausted = false;

  /** Keyed: the key of the row `limit` rows after `start`, or undefined when fewer are left. */
  const boundary = async (): Promise<(string | null)[] | undefined> => {
    const [row] = await run(
      `SELECT ${keys.map((key) => `${key}::text`).join(", ")} FROM ${name}
       ${start ? `WHERE ${tuple} > ${params(1)}` : ""} ORDER BY ${keys.join(", ")} OFFSET ${limit - 1} LIMIT 1`,
      start ?? [],
    );
    return row;
  };

  /**
   * Keyed: cuts the next key ranges and requests them until PAGES_IN_FLIGHT are queued, in the
   * background, so the caller gets a page without waiting for the next boundary. A failure is kept
   * and thrown by `next`.
   */
  let planning: Promise<void> | undefined;
  let planFailure: { error: unknown } | undefined;
  const plan = () => {
    if (!byKey || planning || exhausted || planFailure || queue.length >= PAGES_IN_FLIGHT) return;
    planning = (async () => {
      // Never settles before `planning` is set (the finally below clears it).
      await undefined;
      try {
        while (!exhausted && queue.length < PAGES_IN_FLIGHT) {
          const from = start;
          const to = await boundary();
          const where: string[] = [];
          if (from) where.push(`${tuple} > ${params(1)}`);
          if (to) where.push(`${tuple} <= ${params(from ? from.length + 1 : 1)}`);
          enqueue(read(where, [...(from ?? []), ...(to ?? [])]));
          start = to;
          exhausted = to === undefined;
        }
      } catch (error) {
        planFailure = { error };
      } finally {
        planning = undefined;
      }
    })();
  };

  return {
    async next(): Promise<Page | undefined> {
      for (;;) {
        if (byKey) {
          plan();
          while (queue.length === 0 && planning) await planning;
          if (planFailure) throw planFailure.error;
        } else if (!exhausted && queue.length === 0) {
          enqueue(read([], [], limit));
        }
        const page = await queue.shift();
        if (!page) return undefined;
        // The next pages are sized on this one, before they are requested.
        if (page.rows > 0) limit = Math.max(1, Math.min(50_000, Math.floor((pageBytes * page.rows) / page.bytes)));
        if (byKey) plan();
        else {
          // The next ctid page starts after this one's last row; a short page was the last.
          if (page.limit !== undefined && page.rows === page.limit && page.lastCtid)
            enqueue(read(["ctid > $1::tid"], [page.lastCtid], limit));
          else exhausted = true;
        }
        // A key range can be empty (its rows deleted meanwhile, or the last range): read on.
        if (page.rows > 0) return page;
      }
    },
  };
}

/**
 * Catalog queries run with an empty search_path (in the same transaction), so pg_get_expr,
 * format_type and friends schema-qualify every name, as pg_dump does: the dump restores with
 * `search_path = ''` whatever the target's settings.
 */
async function rows<T>(sql: RawSql, text: string, params: unknown[] = []): Promise<T[]> {
  const [, result] = await sql.transaction([
    sql.query("SELECT set_config('search_path', '', true)"),
    sql.query(text, params, { arrayMode: false, fullResults: false, types: RAW_TYPES }),
  ]);
  return result as unknown as T[];
}

function schemaFilter(exclude: readonly string[]): string {
  const list = ["pg_catalog", "information_schema", "pg_toast", ...exclude].map(literal).join(", ");
  return `NOT IN (${list}) AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`;
}

/** Generates the dump as chunks of SQL text; `stats()` is complete once the generator is done. */
export function exportDatabase(connectionString: string, options: ExportOptions = {}) {
  const sql = neon(connectionString, { fullResults: false, readOnly: true }) as unknown as RawSql;
  const exclude = options.excludeSchemas ?? ["tenantry"];
  const pageBytes = options.pageBytes ?? 2 * 1024 * 1024;
  const tables: TableManifest[] = [];
  const started = Date.now();
  let totalBytes = 0;
  let schemaVersion: string | null = null;
  let finished = false;

  async function* generate(): AsyncGenerator<string> {
    const emit = (text: string, bytes = Buffer.byteLength(text)) => {
      totalBytes += bytes;
      return text;
    };
    const nsFilter = schemaFilter(exclude);
    const [ledger] = await rows<{ present: string }>(
      sql,
      "SELECT (to_regclass('tenantry.migrations') IS NOT NULL)::text AS present",
    );
    if (ledger?.present === "true") {
      const [last] = await rows<{ name: string }>(
        sql,
        "SELECT name FROM tenantry.migrations ORDER BY name DESC LIMIT 1",
      );
      schemaVersion = last?.name ?? null;
    }
    const [meta] = await rows<{ db: string; version: string }>(
      sql,
      "SELECT current_database() AS db, current_setting('server_version') AS version",
    );

    yield emit(`-- Tenantry export of database ${meta?.db ?? "?"} (Postgres ${meta?.version ?? "?"}), schema version ${schemaVersion ?? "none"}
-- Restore into an empty database:  gunzip -c dump.sql.gz | psql -v ON_ERROR_STOP=1 -d <database>
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET client_min_messages = warning;
SELECT pg_catalog.set_config('search_path', '', false);
BEGIN;

`);

    // Schemas other than public.
    const schemas = await rows<{ nspname: string }>(
      sql,
      `SELECT n.nspname FROM pg_namespace n WHERE n.nspname ${nsFilter} AND n.nspname <> 'public' ORDER BY n.nspname`,
    );
    for (const s of schemas) yield emit(`CREATE SCHEMA IF NOT EXISTS ${ident(s.nspname)};\n`);

    // Enums.
    const enums = await rows<{ schema: string; name: string; labels: string }>(
      sql,
      `SELECT n.nspname AS schema, t.typname AS name,
              (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE t.typtype = 'e' AND n.nspname ${nsFilter} ORDER BY t.oid`,
    );
    for (const e of enums) yield emit(`CREATE TYPE ${qualified(e.schema, e.name)} AS ENUM (${e.labels ?? ""});\n`);

    // Domains.
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
              (SELECT string_agg('CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname)
                 FROM pg_constraint c WHERE c.contypid = t.oid) AS checks
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE t.typtype = 'd' AND n.nspname ${nsFilter} ORDER BY t.oid`,
    );
    for (const d of domains) {
      yield emit(
        `CREATE DOMAIN ${qualified(d.schema, d.name)} AS ${d.base}${d.def !== null ? ` DEFAULT ${d.def}` : ""}${d.notnull === "true" ? " NOT NULL" : ""}${d.checks ? ` ${d.checks}` : ""};\n`,
      );
    }

    // Composite types (not table row types).
    const composites = await rows<{ schema: string; name: string; attrs: string }>(
      sql,
      `SELECT n.nspname AS schema, t.typname AS name,
              (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attrs
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
       WHERE t.typtype = 'c' AND c.relkind = 'c' AND n.nspname ${nsFilter} ORDER BY t.oid`,
    );
    for (const c of composites) yield emit(`CREATE TYPE ${qualified(c.schema, c.name)} AS (${c.attrs ?? ""});\n`);

    // Sequences that are not identity sequences (identity ones come with their column).
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
      owner_table: string | null;
      owner_column: string | null;
    }>(
      sql,
      `SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start,
              s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache,
              s.seqcycle::text AS cycle, ps.last_value::text AS last,
              quote_ident(tn.nspname) || '.' || quote_ident(t.relname) AS owner_table, a.attname AS owner_column
       FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = c.relname
       LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       WHERE n.nspname ${nsFilter} AND (d.deptype IS NULL OR d.deptype = 'a') ORDER BY c.oid`,
    );
    for (const s of sequences) {
      yield emit(
        `CREATE SEQUENCE ${qualified(s.schema, s.name)} AS ${s.type} START WITH ${s.start} INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} CACHE ${s.cache}${s.cycle === "true" ? " CYCLE" : ""};\n`,
      );
    }

    // Tables.
    const tableRows = await rows<{
      oid: string;
      schema: string;
      name: string;
      bytes: string | null;
      tuples: string | null;
    }>(
      sql,
      `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT sum(pg_total_relation_size(t.relid))::text FROM pg_partition_tree(c.oid) t)
                   ELSE pg_total_relation_size(c.oid)::text END AS bytes,
              CASE WHEN c.relkind = 'p'
                   THEN (SELECT sum(greatest(pc.reltuples, 0))::text FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid)
                   ELSE greatest(c.reltuples, 0)::text END AS tuples
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname ${nsFilter} ORDER BY n.nspname, c.relname`,
    );
    const tableList: Table[] = [];
    for (const t of tableRows) {
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
      }>(
        sql,
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid::text AS typeoid,
                CASE WHEN EXISTS (SELECT 1 FROM pg_cast ca WHERE ca.castsource = coalesce(nullif(ty.typbasetype, 0), a.atttypid)
                                    AND ca.casttarget = 'pg_catalog.text'::regtype AND ca.castmethod = 'f')
                     THEN (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.proname) FROM pg_proc p
                           JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = ty.typoutput) END AS textout,
                a.attnotnull::text AS notnull,
                pg_get_expr(ad.adbin, ad.adrelid) AS def, a.attidentity::text AS identity, a.attgenerated::text AS generated,
                CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                     THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [t.oid],
      );
      const key = await rows<{ name: string; type: string }>(
        sql,
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord`,
        [t.oid],
      );
      tableList.push({
        oid: t.oid,
        schema: t.schema,
        name: t.name,
        diskBytes: Number(t.bytes ?? 0),
        tuples: Number(t.tuples ?? 0),
        columns: columns.map((c) => ({
          name: c.name,
          type: c.type,
          typeOid: Number(c.typeoid),
          textOut: c.textout,
          notNull: c.notnull === "true",
          default: c.def,
          identity: c.identity,
          generated: c.generated,
          collation: c.collation,
        })),
        key,
      });
    }

    for (const table of tableList) {
      const defs = table.columns.map((c) => {
        let def = `    ${ident(c.name)} ${c.type}`;
        if (c.collation) def += ` COLLATE ${c.collation}`;
        if (c.generated === "s" && c.default !== null) def += ` GENERATED ALWAYS AS (${c.default}) STORED`;
        else if (c.identity === "a" || c.identity === "d")
          def += ` GENERATED ${c.identity === "a" ? "ALWAYS" : "BY DEFAULT"} AS IDENTITY`;
        else if (c.default !== null) def += ` DEFAULT ${c.default}`;
        if (c.notNull) def += " NOT NULL";
        return def;
      });
      yield emit(`\nCREATE TABLE ${qualified(table.schema, table.name)} (\n${defs.join(",\n")}\n);\n`);
    }
    for (const s of sequences) {
      if (s.owner_table && s.owner_column)
        yield emit(
          `ALTER SEQUENCE ${qualified(s.schema, s.name)} OWNED BY ${s.owner_table}.${ident(s.owner_column)};\n`,
        );
    }

    // Data.
    for (const table of tableList) {
      const copyColumns = table.columns.filter((c) => c.generated !== "s");
      const name = qualified(table.schema, table.name);
      yield emit(`\nCOPY ${name} (${copyColumns.map((c) => ident(c.name)).join(", ")}) FROM stdin;\n`);
      const pages = pageReader(sql, table, name, copyColumns, pageBytes);
      let count = 0;
      let bytes = 0;
      const checksum = new TableChecksum();
      for (;;) {
        const page = await pages.next();
        if (!page) break;
        checksum.add(page.hash);
        count += page.rows;
        bytes += page.bytes;
        yield emit(page.lines, page.bytes);
        options.onProgress?.(`${table.schema}.${table.name}`, count);
      }
      yield emit("\\.\n");
      tables.push({ name: `${table.schema}.${table.name}`, rows: count, checksum: checksum.hex(), bytes });
    }

    // Sequence values, then constraints (keys first, foreign keys last), indexes and views.
    yield emit("\n");
    for (const s of sequences) {
      if (s.last !== null)
        yield emit(`SELECT pg_catalog.setval(${literal(qualified(s.schema, s.name))}, ${s.last}, true);\n`);
    }
    for (const table of tableList) {
      for (const c of table.columns) {
        if (c.identity !== "a" && c.identity !== "d") continue;
        const [state] = await rows<{ last: string | null }>(
          sql,
          `SELECT last_value::text AS last FROM pg_sequences WHERE schemaname || '.' || sequencename = (
             SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = pg_get_serial_sequence($1, $2)::regclass)`,
          [qualified(table.schema, table.name), c.name],
        );
        if (state?.last) {
          yield emit(
            `SELECT pg_catalog.setval(pg_get_serial_sequence(${literal(qualified(table.schema, table.name))}, ${literal(c.name)}), ${state.last}, true);\n`,
          );
        }
      }
    }
    const constraints = await rows<{ schema: string; table: string; name: string; def: string; contype: string }>(
      sql,
      `SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, pg_get_constraintdef(con.oid) AS def, con.contype::text AS contype
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE con.contype IN ('p', 'u', 'c', 'x', 'f') AND n.nspname ${nsFilter} AND con.conislocal
       ORDER BY CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, n.nspname, c.relname, con.conname`,
    );
    for (const c of constraints) {
      yield emit(`ALTER TABLE ONLY ${qualified(c.schema, c.table)} ADD CONSTRAINT ${ident(c.name)} ${c.def};\n`);
    }
    const indexes = await rows<{ def: string }>(
      sql,
      `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname ${nsFilter} AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
       ORDER BY n.nspname, c.relname`,
    );
    for (const i of indexes) yield emit(`${i.def};\n`);
    const views = await rows<{ schema: string; name: string; def: string }>(
      sql,
      `SELECT n.nspname AS schema, c.relname AS name, pg_get_viewdef(c.oid) AS def FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND n.nspname ${nsFilter} ORDER BY c.oid`,
    );
    for (const v of views)
      yield emit(`CREATE VIEW ${qualified(v.schema, v.name)} AS\n${v.def.trimEnd().replace(/;$/, "")};\n`);
    yield emit("\nCOMMIT;\n");
    finished = true;
  }

  return {
    chunks: generate(),
    /** The manifest data; throws if the export has not finished. */
    stats(): ExportStats {
      if (!finished) throw new Error("the export has not finished");
      return {
        tables,
        rows: tables.reduce((total, t) => total + t.rows, 0),
        bytes: totalBytes,
        schemaVersion,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date().toISOString(),
        ms: Date.now() - started,
      };
    },
  };
}
