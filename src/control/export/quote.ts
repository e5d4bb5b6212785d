/**
 * Quoting for the SQL the export writes and runs: every name is double-quoted and every literal
 * single-quoted, whatever its spelling, so a tenant's odd identifiers (spaces, capitals, quotes)
 * survive the dump and the restore. `standard_conforming_strings` is on in the dump's preamble and
 * on every Postgres we read, so doubling the quote character is the whole of the escaping.
 */

/** A name as a quoted identifier: `"we""ird"`. */
export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A string as a literal: `'it''s'`. */
export const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** A schema-qualified name: `"schema"."name"`. */
export const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;
