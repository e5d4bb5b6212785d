/**
 * Quoting for the SQL the export writes and runs: the one path every name, literal and comment
 * text from a tenant's database takes into the dump. A tenant controls all of these (its database
 * name, its ledger rows, its identifiers, enum labels, comments), and the dump is run by
 * `psql`, which reads a backslash outside a quoted token as a meta-command (`\! cmd` runs a shell
 * command): so nothing from the database is written outside a quoted token, and a comment line
 * never holds a line break.
 *
 * - A name is double-quoted with its quotes doubled; inside quotes psql sees no meta-command.
 * - A literal is single-quoted with its quotes doubled; one holding a backslash is written as an
 *   `E'…'` string with its backslashes doubled too, which reads the same whether
 *   `standard_conforming_strings` is on or off (psql's lexer follows that setting, so a plain
 *   `'…\'` could otherwise end somewhere else for psql than for the server).
 * - Text in a `--` comment has every control character (newline and carriage return above all,
 *   which would end the comment) written as a `\xNN` escape.
 */

/** A name as a quoted identifier: `"we""ird"`. */
export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A string as a literal: `'it''s'`, or `E'back\\slash'` when it holds a backslash. */
export function literal(value: string): string {
  const quoted = value.replaceAll("'", "''");
  return value.includes("\\") ? `E'${quoted.replaceAll("\\", "\\\\")}'` : `'${quoted}'`;
}

/** A schema-qualified name: `"schema"."name"`. */
export const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;

/**
 * Text for a `--` comment: control characters (C0, DEL, C1 and the Unicode line and paragraph
 * separators) as `\xNN` / `\uNNNN`, so the comment is one line whatever the text held.
 */
export const commentText = (text: string) =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped.
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
