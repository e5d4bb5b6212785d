/**
 * Extensions and range types, written before anything that may use them: `CREATE EXTENSION IF NOT
 * EXISTS` (the target may have it already; its objects come with it, so the export leaves them out
 * elsewhere), and `CREATE TYPE … AS RANGE` with its subtype and, where set, its operator class,
 * collation and difference function. Names are quoted by quote.ts; the subtype is format_type's text.
 */
import { rows } from "./catalog.ts";
import { ident, qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface Extension {
  readonly name: string;
  readonly schema: string;
}

export interface RangeType {
  readonly schema: string;
  readonly name: string;
  readonly subtype: string;
  /** Qualified and quoted, when not the subtype's default. */
  readonly opclass: string | null;
  readonly collation: string | null;
  readonly diff: string | null;
}

/** Extensions other than plpgsql (every database has it), in the schemas the dump creates. */
export function readExtensions(sql: ExportSql, nsFilter: string): Promise<Extension[]> {
  return rows<Extension>(
    sql,
    `SELECT e.extname AS name, n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname <> 'plpgsql' AND n.nspname ${nsFilter} ORDER BY e.oid`,
  );
}

export const createExtension = (e: Extension) =>
  `CREATE EXTENSION IF NOT EXISTS ${ident(e.name)} WITH SCHEMA ${ident(e.schema)};\n`;

export async function readRanges(sql: ExportSql, nsFilter: string): Promise<RangeType[]> {
  const ranges = await rows<{
    schema: string;
    name: string;
    subtype: string;
    opclass: string | null;
    collation: string | null;
    diff: string | null;
  }>(
    sql,
    `SELECT n.nspname AS schema, t.typname AS name, format_type(r.rngsubtype, NULL) AS subtype,
            CASE WHEN NOT oc.opcdefault THEN json_build_array(ocn.nspname, oc.opcname)::text END AS opclass,
            CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN json_build_array(con.nspname, co.collname)::text END AS collation,
            CASE WHEN r.rngsubdiff <> 0 THEN json_build_array(pn.nspname, p.proname)::text END AS diff
       FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid JOIN pg_namespace n ON n.oid = t.typnamespace
       JOIN pg_type st ON st.oid = r.rngsubtype
       JOIN pg_opclass oc ON oc.oid = r.rngsubopc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
       LEFT JOIN pg_collation co ON co.oid = r.rngcollation LEFT JOIN pg_namespace con ON con.oid = co.collnamespace
       LEFT JOIN pg_proc p ON p.oid = r.rngsubdiff LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE n.nspname ${nsFilter}
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
      ORDER BY t.oid`,
  );
  const pair = (json: string | null) => {
    if (json === null) return null;
    const [schema, name] = JSON.parse(json) as [string, string];
    return qualified(schema, name);
  };
  return ranges.map((r) => ({ ...r, opclass: pair(r.opclass), collation: pair(r.collation), diff: pair(r.diff) }));
}

export function createRange(r: RangeType): string {
  const options = [`SUBTYPE = ${r.subtype}`];
  if (r.opclass) options.push(`SUBTYPE_OPCLASS = ${r.opclass}`);
  if (r.collation) options.push(`COLLATION = ${r.collation}`);
  if (r.diff) options.push(`SUBTYPE_DIFF = ${r.diff}`);
  return `CREATE TYPE ${qualified(r.schema, r.name)} AS RANGE (${options.join(", ")});\n`;
}
