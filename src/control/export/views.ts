/**
 * Views and materialized views, in creation (oid) order so one built on another comes after it,
 * written after the constraints and before the indexes (an index may be on a materialized view).
 * A materialized view is created `WITH NO DATA` and, if the source's was populated, refreshed at
 * the end of the dump, once its indexes and every function it may call exist: the data is
 * computed by the restore, as pg_dump does, not copied.
 */
import { rows } from "./catalog.ts";
import { qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface View {
  readonly schema: string;
  readonly name: string;
  /** pg_get_viewdef's text. */
  readonly def: string;
  /** `pg_class.relkind`: v (view) or m (materialized view). */
  readonly kind?: string;
  /** A materialized view holding data (`relispopulated`): "true" or "false". */
  readonly populated?: string;
}

export function readViews(sql: ExportSql, nsFilter: string): Promise<View[]> {
  return rows<View>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS name, pg_get_viewdef(c.oid) AS def, c.relkind::text AS kind,
            c.relispopulated::text AS populated
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND n.nspname ${nsFilter} ORDER BY c.oid`,
  );
}

/** pg_get_viewdef's text as the view's query (without the semicolon it may end with). */
export function createView(v: View): string {
  const query = v.def.trimEnd().replace(/;$/, "");
  return v.kind === "m"
    ? `CREATE MATERIALIZED VIEW ${qualified(v.schema, v.name)} AS\n${query}\n  WITH NO DATA;\n`
    : `CREATE VIEW ${qualified(v.schema, v.name)} AS\n${query};\n`;
}

/** `REFRESH MATERIALIZED VIEW`, for a populated materialized view; undefined otherwise. */
export const refreshView = (v: View) =>
  v.kind === "m" && v.populated === "true" ? `REFRESH MATERIALIZED VIEW ${qualified(v.schema, v.name)};\n` : undefined;
