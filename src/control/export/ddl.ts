/**
 * DDL rendering: the dump's SQL text apart from the data lines, as pure functions from catalog
 * values (catalog.ts) to statements, no I/O. Kept apart from the catalog queries so the text a
 * restore runs can be read, and unit-tested, without a database: every name is quoted (quote.ts),
 * and fragments Postgres already rendered (defaults, checks, index and view definitions) are
 * written as Postgres gave them. Each function returns one statement with its newline, in the
 * order engine.ts writes them (see there for why that order restores).
 */
import type { Column, CompositeType, Constraint, Domain, EnumType, Sequence, ServerMeta, Table } from "./catalog.ts";
import { commentText, ident, literal, qualified } from "./quote.ts";

/**
 * The dump's header: where it came from, how to restore it, and the session settings a restore
 * needs (the search_path emptied, as pg_dump does, so every name in the dump is qualified), then
 * the transaction the whole restore runs in. The database's name and the ledger's newest row are the
 * tenant's text: they go into the comment line through commentText, never raw (a newline in either
 * would end the comment and start a psql meta-command).
 */
export function preamble(meta: ServerMeta | undefined, schemaVersion: string | null): string {
  const about = `database ${meta?.db ?? "?"} (Postgres ${meta?.version ?? "?"}), schema version ${schemaVersion ?? "none"}`;
  return `-- Tenantry export of ${commentText(about)}
-- Restore into an empty database:  gunzip -c dump.sql.gz | psql -v ON_ERROR_STOP=1 -d <database>
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET client_min_messages = warning;
SELECT pg_catalog.set_config('search_path', '', false);
BEGIN;

`;
}

export const createSchema = (name: string) => `CREATE SCHEMA IF NOT EXISTS ${ident(name)};\n`;

export const createEnum = (e: EnumType) =>
  `CREATE TYPE ${qualified(e.schema, e.name)} AS ENUM (${e.labels.map(literal).join(", ")});\n`;

export const createDomain = (d: Domain) =>
  `CREATE DOMAIN ${qualified(d.schema, d.name)} AS ${d.base}${d.default !== null ? ` DEFAULT ${d.default}` : ""}${d.notNull ? " NOT NULL" : ""}${d.checks.map((c) => ` CONSTRAINT ${ident(c.name)} ${c.def}`).join("")};\n`;

export const createComposite = (c: CompositeType) =>
  `CREATE TYPE ${qualified(c.schema, c.name)} AS (${c.attrs.map((a) => `${ident(a.name)} ${a.type}`).join(", ")});\n`;

export const createSequence = (s: Sequence) =>
  `CREATE SEQUENCE ${qualified(s.schema, s.name)} AS ${s.type} START WITH ${s.start} INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} CACHE ${s.cache}${s.cycle ? " CYCLE" : ""};\n`;

/**
 * A column's definition: a stored generated column keeps its expression, an identity column its
 * kind (its sequence comes with it, set later by setIdentityValue), any other column its default.
 * Constraints other than NOT NULL are added after the data (see addConstraint).
 */
function columnDefinition(c: Column): string {
  let def = `    ${ident(c.name)} ${c.type}`;
  if (c.collation) def += ` COLLATE ${c.collation}`;
  if (c.generated === "s" && c.default !== null) def += ` GENERATED ALWAYS AS (${c.default}) STORED`;
  else if (c.identity === "a" || c.identity === "d")
    def += ` GENERATED ${c.identity === "a" ? "ALWAYS" : "BY DEFAULT"} AS IDENTITY`;
  else if (c.default !== null) def += ` DEFAULT ${c.default}`;
  if (c.notNull) def += " NOT NULL";
  return def;
}

/** A table; with `parents` (qualified), an inheriting one, with only the columns it defines itself. */
export function createTable(table: Table, parents: readonly string[] = [], partitionBy?: string | null): string {
  const columns = parents.length > 0 ? table.columns.filter((c) => c.local) : table.columns;
  const inherits = parents.length > 0 ? ` INHERITS (${parents.join(", ")})` : "";
  const partitioned = partitionBy ? ` PARTITION BY ${partitionBy}` : "";
  return `\nCREATE TABLE ${qualified(table.schema, table.name)} (\n${columns.map(columnDefinition).join(",\n")}\n)${inherits}${partitioned};\n`;
}

/** `ALTER SEQUENCE … OWNED BY`, for a sequence a column owns (a serial); undefined otherwise. */
export function sequenceOwnedBy(s: Sequence): string | undefined {
  if (!s.ownerTable || !s.ownerColumn) return undefined;
  return `ALTER SEQUENCE ${qualified(s.schema, s.name)} OWNED BY ${s.ownerTable}.${ident(s.ownerColumn)};\n`;
}

/** The line that opens a table's data block; `columns` are the ones its COPY lines carry. */
export const copyStart = (table: Table, columns: readonly Column[]) =>
  `\nCOPY ${qualified(table.schema, table.name)} (${columns.map((c) => ident(c.name)).join(", ")}) FROM stdin;\n`;

/** The line that closes a data block. */
export const COPY_END = "\\.\n";

/** Where the sequence was, so the next value restores the same; undefined for one never called. */
export function setSequenceValue(s: Sequence): string | undefined {
  if (s.last === null) return undefined;
  return `SELECT pg_catalog.setval(${literal(qualified(s.schema, s.name))}, ${s.last}, true);\n`;
}

/** The same for an identity column's sequence, which has no name of its own in the dump. */
export const setIdentityValue = (table: Table, column: Column, last: string) =>
  `SELECT pg_catalog.setval(pg_get_serial_sequence(${literal(qualified(table.schema, table.name))}, ${literal(column.name)}), ${last}, true);\n`;

/**
 * A constraint, on the table ONLY, except a check: an inheriting table must get its parent's
 * checks, so a check is added to the parent and reaches the children that way (their inherited
 * copies are not read, see readConstraints); so is any constraint of a partitioned table.
 */
export const addConstraint = (c: Constraint, partitioned = false) =>
  `ALTER TABLE${c.contype === "c" || partitioned ? "" : " ONLY"} ${qualified(c.schema, c.table)} ADD CONSTRAINT ${ident(c.name)} ${c.def};\n`;

/** pg_get_indexdef's text, which is already a complete, qualified statement. */
export const createIndex = (def: string) => `${def};\n`;

/** The end of the restore's transaction: nothing is visible in the target until here. */
export const COMMIT = "\nCOMMIT;\n";
