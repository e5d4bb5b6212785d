/**
 * Partitioned tables as pg_dump writes them: the partitioned table with its `PARTITION BY` key,
 * then each partition `PARTITION OF` its parent with its bounds (`FOR VALUES …` or `DEFAULT`),
 * itself partitioned in turn where it is. Data is copied from the leaf partitions only (a
 * partitioned table holds no rows of its own), each with `ONLY`. Constraints are added to a
 * partitioned table without ONLY, so they reach every partition, and the copies Postgres made on
 * the partitions are not read (see readConstraints); indexes likewise (see readIndexes).
 */
import { rows, type Table } from "./catalog.ts";
import { qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface Partitioning {
  /** pg_get_partkeydef's text (`RANGE (at)`), for a partitioned table. */
  readonly key: string | null;
  /** The parent, qualified and quoted, and the bounds, for a partition. */
  readonly parent: string | null;
  readonly bound: string | null;
}

/** Partitioned tables and partitions, by oid. */
export async function readPartitioning(sql: ExportSql, nsFilter: string): Promise<Map<string, Partitioning>> {
  const found = await rows<{
    oid: string;
    key: string | null;
    parent_schema: string | null;
    parent: string | null;
    bound: string | null;
  }>(
    sql,
    `SELECT c.oid::text AS oid, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS key,
            pn.nspname AS parent_schema, p.relname AS parent,
            CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
       LEFT JOIN pg_class p ON p.oid = i.inhparent LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE c.relkind IN ('r', 'p') AND (c.relkind = 'p' OR c.relispartition) AND n.nspname ${nsFilter}`,
  );
  return new Map(
    found.map((f) => [
      f.oid,
      {
        key: f.key,
        parent: f.parent_schema !== null && f.parent !== null ? qualified(f.parent_schema, f.parent) : null,
        bound: f.bound,
      },
    ]),
  );
}

/** `CREATE TABLE … PARTITION OF … <bounds>`, for a partition. */
export const createPartition = (table: Table, p: Partitioning) =>
  `\nCREATE TABLE ${qualified(table.schema, table.name)} PARTITION OF ${p.parent} ${p.bound}${p.key ? ` PARTITION BY ${p.key}` : ""};\n`;
