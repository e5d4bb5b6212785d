/**
 * Table inheritance (`INHERITS`): each child table is created with its parents, after them, and
 * with only the columns it defines itself (the inherited ones come from the parents), as pg_dump
 * writes it. Each table's rows are read with `ONLY` (see pages.ts), so a parent's dump holds its
 * own rows and not its children's a second time. Partitions are not children here: they are read
 * through their partitioned table (see catalog.ts).
 */
import { rows, type Table } from "./catalog.ts";
import { qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

/** Each inheriting table's parents (by oid), qualified and quoted, in declaration order. */
export async function readParents(sql: ExportSql, nsFilter: string): Promise<Map<string, string[]>> {
  const links = await rows<{ child: string; schema: string; name: string }>(
    sql,
    `SELECT i.inhrelid::text AS child, pn.nspname AS schema, p.relname AS name
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE NOT c.relispartition AND c.relkind = 'r' AND n.nspname ${nsFilter} ORDER BY i.inhrelid, i.inhseqno`,
  );
  const parents = new Map<string, string[]>();
  for (const link of links)
    parents.set(link.child, [...(parents.get(link.child) ?? []), qualified(link.schema, link.name)]);
  return parents;
}

/** The tables with every parent before its children (otherwise in the order given). */
export function parentsFirst(tables: readonly Table[], parents: ReadonlyMap<string, string[]>): Table[] {
  const byName = new Map(tables.map((t) => [qualified(t.schema, t.name), t]));
  const placed = new Set<Table>();
  const ordered: Table[] = [];
  const place = (table: Table, seen: Set<Table>) => {
    if (placed.has(table) || seen.has(table)) return;
    seen.add(table);
    for (const parent of parents.get(table.oid) ?? []) {
      const found = byName.get(parent);
      if (found) place(found, seen);
    }
    placed.add(table);
    ordered.push(table);
  };
  for (const table of tables) place(table, new Set());
  return ordered;
}
