/**
 * COPY text: the SQL that makes Postgres build each row's COPY line itself (every value through
 * its type's output function, escaped the way `COPY … TO` escapes it, tab-separated, `\N` for
 * NULL) and join a page of lines into one string, plus the few checks and escapes the Worker does
 * on a whole page. Pure functions: pages.ts runs the queries.
 *
 * Why Postgres builds the lines: the Worker then carries one value per page instead of one per
 * value, and its CPU (which Workers meter) goes into moving text, not into formatting it. The data
 * blocks are byte for byte what `COPY … TO STDOUT` writes
 * (https://www.postgresql.org/docs/current/sql-copy.html, "File Formats").
 */
import type { Column } from "./catalog.ts";
import { ident } from "./quote.ts";

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

/** The columns a table's COPY lines carry: all but stored generated ones, which the restore computes. */
export const copyColumns = (columns: readonly Column[]) => columns.filter((c) => c.generated !== "s");

/** Columns whose values may hold a newline, carriage return or tab (see copyField). */
export const textLikeColumns = (columns: readonly Column[]) => columns.filter((c) => fieldKind(c.typeOid) === "text");

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
 * SQL for one value as a field of a COPY text line: the type's text output with backslash first,
 * then newline, carriage return and tab escaped, `\N` for NULL. `COPY … TO` also escapes
 * backspace, form feed and vertical tab; those can never be a line's structure, so
 * `escapeRareControls` does them on the whole page, which costs one scan instead of three more
 * `replace` calls per value.
 *
 * With `escapeControls` false, a text-like value gets its backslashes escaped only: the page is read
 * on the bet that none of its values holds a newline, carriage return or tab, and `unescapedPageHolds`
 * checks the bet on the page (see PageReader). Three `replace` calls fewer per value, for the most
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
export function copyLine(columns: readonly Column[], dirty: ReadonlySet<string> | "all"): string {
  if (columns.length === 0) return "''";
  const fields = columns.map((c) => copyField(c, dirty === "all" || dirty.has(c.name)));
  const groups: string[] = [];
  for (let i = 0; i < fields.length; i += CONCAT_GROUP) {
    groups.push(`concat_ws(E'\\t', ${fields.slice(i, i + CONCAT_GROUP).join(", ")})`);
  }
  return groups.length === 1 ? (groups[0] as string) : `concat_ws(E'\\t', ${groups.join(", ")})`;
}

/** SQL for whether the column's value holds a newline, carriage return or tab. */
export function holdsControl(column: Column): string {
  const value = textOf(column);
  return `strpos(${value}, E'\\n') + strpos(${value}, E'\\r') + strpos(${value}, E'\\t') > 0`;
}

/**
 * Whether a page read without newline, carriage return and tab escaping (see copyField) is exactly
 * what escaping would have written: `rows` lines, `rows × (columns − 1)` tabs and no carriage return
 * mean no value held one of them.
 */
export function unescapedPageHolds(text: string, rows: number, columns: number): boolean {
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
export function escapeRareControls(text: string): string {
  // Three indexOf scans are ~20× faster than one regular expression test on a page of text.
  if (text.indexOf("\b") < 0 && text.indexOf("\f") < 0 && text.indexOf("\v") < 0) return text;
  return text.replace(RARE_CONTROLS_ALL, (char) => RARE_ESCAPES[char] ?? char);
}

/** Lines in a page of text, each ending in a newline. */
export function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

/** What one page query reads (see pageQuery). */
export interface PageQuery {
  /** The table, qualified and quoted. */
  readonly name: string;
  /** Read with ONLY: its own rows, not its children's (see inheritance.ts). */
  readonly only: boolean;
  /** The columns its COPY lines carry (see copyColumns). */
  readonly columns: readonly Column[];
  /** Paged by primary key ranges (true) or by ctid. */
  readonly byKey: boolean;
  /** The key columns, qualified (or the ctid): the ctid pages' order. */
  readonly keys: readonly string[];
  /** Text-like columns whose newlines, carriage returns and tabs are escaped (see copyLine). */
  readonly dirty: ReadonlySet<string> | "all";
  /** Columns reported, one flag each, as having held a newline, carriage return or tab on the page. */
  readonly flags: readonly Column[];
  /** Conditions on the rows (a key range, or the ctid to start after), ANDed. */
  readonly where: readonly string[];
  /** The ctid page's row limit; undefined for a key range, which is bounded by its keys. */
  readonly limit: number | undefined;
}

/**
 * SQL for one page: its row count, the UTF-8 bytes of its lines, the lines joined into one string,
 * its last ctid (without a key), the sum of its line hashes (see TableChecksum) and one flag per
 * `flags` column, as a single row of text.
 *
 * The rows are joined in whatever order Postgres reads them: nothing depends on it (COPY FROM,
 * the page bounds and the checksum ignore it), so none is forced on a keyed range. Without a key,
 * the page's last ctid is where the next one starts. OFFSET 0 (or the LIMIT) keeps the rows'
 * subquery from being merged into the aggregate, which would build every line twice: once for the
 * page, once for its hash. The hash reads `line` in C collation: a column's nondeterministic
 * collation must not blur it.
 */
export function pageQuery(q: PageQuery): string {
  const flagsInner = q.flags.map((c, i) => `, (${holdsControl(c)}) AS f${i}`).join("");
  const flagsAgg = q.flags.map((_, i) => `, bool_or(f${i}) AS f${i}`).join("");
  const flagsOut = q.flags.map((_, i) => `, f${i}::text`).join("");
  return `SELECT rows::text, octet_length(lines)::text, lines, ${q.byKey ? "NULL" : "last_ctid::text"}, hash::text${flagsOut}
       FROM (SELECT count(*) AS rows, string_agg(line, E'\\n') || E'\\n' AS lines, coalesce(sum(hashtextextended(line COLLATE "C", 0)), 0) AS hash
                    ${q.byKey ? "" : ", max(last_ctid) AS last_ctid"}${flagsAgg}
             FROM (SELECT ${q.byKey ? "" : `${q.name}.ctid AS last_ctid, `}${copyLine(q.columns, q.dirty)} AS line${flagsInner}
                   FROM ${q.only ? "ONLY " : ""}${q.name} ${q.where.length ? `WHERE ${q.where.join(" AND ")}` : ""}
                   ${q.byKey ? "" : `ORDER BY ${q.keys.join(", ")}`} ${q.limit === undefined ? "OFFSET 0" : `LIMIT ${q.limit}`}) AS page) AS agg`;
}
