/**
 * Which statements of a down file destroy data, and what they destroy: DROP TABLE, ALTER TABLE …
 * DROP COLUMN, DROP SCHEMA, DROP MATERIALIZED VIEW, DROP SEQUENCE and TRUNCATE (and any DROP …
 * CASCADE, which may take data with it). Dropping an index, a view, a constraint or a function
 * loses nothing the up migration cannot build again, so those are not destructive. The rollback
 * path (migrations.ts) uses this to take an export first and the dry run to list what would go.
 */

export interface DropTarget {
  /** The migration whose down file drops it. */
  readonly migration: string;
  readonly kind: "table" | "column" | "schema" | "materialized view" | "sequence" | "rows" | "cascade";
  /** The object as written in the statement, quotes removed (`orders.note`, `public.products`). */
  readonly object: string;
}

const ID = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const NAME = String.raw`${ID}(?:\s*\.\s*${ID})*`;
const LIST = String.raw`${NAME}(?:\s*,\s*${NAME})*`;

/** `"public"."orders"` → `public.orders`. */
function unquote(name: string): string {
  return [...name.matchAll(new RegExp(ID, "g"))]
    .map(([part]) => (part.startsWith('"') ? part.slice(1, -1).replaceAll('""', '"') : part.toLowerCase()))
    .join(".");
}

const names = (list: string) => [...list.matchAll(new RegExp(NAME, "g"))].map(([name]) => unquote(name));

/** Line and block comments removed, so a commented-out DROP is not counted. */
const stripComments = (sql: string) => sql.replace(/--[^\n]*/g, " ").replace(/\/\*[\s\S]*?\*\//g, " ");

const DROP_OBJECT = new RegExp(
  String.raw`\bDROP\s+(TABLE|SCHEMA|MATERIALIZED\s+VIEW|SEQUENCE)\s+(?:IF\s+EXISTS\s+)?(${LIST})`,
  "gi",
);
const ALTER_TABLE = new RegExp(String.raw`\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(${NAME})([\s\S]*)`, "i");
const DROP_COLUMN = new RegExp(String.raw`\bDROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(${ID})`, "gi");
const TRUNCATE = new RegExp(String.raw`\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?(${LIST})`, "gi");
const CASCADE = /\bDROP\b[\s\S]*\bCASCADE\b/i;
/** ALTER TABLE … DROP CONSTRAINT / DEFAULT / NOT NULL / IDENTITY / EXPRESSION keep the data. */
const HARMLESS_ALTER_DROP = /^(CONSTRAINT|DEFAULT|NOT|IDENTITY|EXPRESSION)$/i;

/** What one statement of migration `migration`'s down file destroys (empty when nothing). */
export function destructiveTargets(migration: string, statement: string): DropTarget[] {
  const sql = stripComments(statement);
  const found: DropTarget[] = [];
  for (const match of sql.matchAll(DROP_OBJECT)) {
    const kind = (match[1] ?? "").toLowerCase().replace(/\s+/g, " ") as DropTarget["kind"];
    for (const object of names(match[2] ?? "")) found.push({ migration, kind, object });
  }
  const alter = ALTER_TABLE.exec(sql);
  if (alter) {
    const table = unquote(alter[1] ?? "");
    for (const match of (alter[2] ?? "").matchAll(DROP_COLUMN)) {
      const column = match[1] ?? "";
      if (!HARMLESS_ALTER_DROP.test(column))
        found.push({ migration, kind: "column", object: `${table}.${unquote(column)}` });
    }
  }
  for (const match of sql.matchAll(TRUNCATE)) {
    for (const object of names(match[1] ?? "")) found.push({ migration, kind: "rows", object });
  }
  if (found.length === 0 && CASCADE.test(sql))
    found.push({ migration, kind: "cascade", object: sql.trim().slice(0, 120) });
  return found;
}

/** Everything the down files of `migrations` (in the order they would run) destroy. */
export function dropsOf(migrations: readonly { name: string; down: readonly string[] | null }[]): DropTarget[] {
  return migrations.flatMap((m) => (m.down ?? []).flatMap((statement) => destructiveTargets(m.name, statement)));
}

/** `column orders.note (0002_order_note)`: one line of a dry run's or a refusal's list. */
export const describeDrop = (drop: DropTarget) => `${drop.kind} ${drop.object} (${drop.migration})`;
