/**
 * Comments (`COMMENT ON …`) on the objects the dump creates: schemas other than public, enums,
 * domains and their constraints, composite types, tables, views, materialized views, sequences,
 * indexes, columns, table constraints, functions and procedures, triggers, policies and rules. Read from pg_description in one query, written at the end of the dump, when
 * every object they describe exists. The comment text and every name go through quote.ts, like
 * everything else the dump holds: a comment is free text a tenant wrote.
 */
import { rows } from "./catalog.ts";
import { ident, literal, qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface ObjectComment {
  /** What the comment is on, as COMMENT ON spells it (CONSTRAINT ON DOMAIN: `DOMAIN CONSTRAINT`). */
  readonly kind:
    | "SCHEMA"
    | "TYPE"
    | "DOMAIN"
    | "DOMAIN CONSTRAINT"
    | "TABLE"
    | "VIEW"
    | "MATERIALIZED VIEW"
    | "SEQUENCE"
    | "INDEX"
    | "COLUMN"
    | "CONSTRAINT"
    | "FUNCTION"
    | "PROCEDURE"
    | "TRIGGER"
    | "POLICY"
    | "RULE";
  readonly schema: string;
  /** The object's name (for a column or table constraint, its table's; for a domain constraint, its domain's). */
  readonly name: string;
  /**
   * A column's, constraint's, trigger's, policy's or rule's own name; a function's argument list
   * (pg_get_function_identity_arguments); null for the others.
   */
  readonly sub: string | null;
  readonly text: string;
}

/**
 * The comments, on objects in the schemas `nsFilter` keeps. Relations the dump does not create as
 * such are left out: composite types' relations, identity sequences and partitions' indexes.
 */
export function readComments(sql: ExportSql, nsFilter: string): Promise<ObjectComment[]> {
  return rows<ObjectComment>(
    sql,
    `WITH rel AS (
       SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname ${nsFilter} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i')
          AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid AND dep.deptype = 'i' AND c.relkind = 'S')
          AND NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid WHERE x.indexrelid = c.oid AND t.relispartition))
     SELECT kind, schema, name, sub, text FROM (
       SELECT 'SCHEMA' AS kind, n.nspname AS schema, n.nspname AS name, NULL AS sub, d.description AS text, 0 AS ord
         FROM pg_description d JOIN pg_namespace n ON n.oid = d.objoid
        WHERE d.classoid = 'pg_namespace'::regclass AND n.nspname ${nsFilter} AND n.nspname <> 'public'
       UNION ALL
       SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, NULL, d.description, 1
         FROM pg_description d JOIN pg_type t ON t.oid = d.objoid JOIN pg_namespace n ON n.oid = t.typnamespace
         LEFT JOIN pg_class tc ON tc.oid = t.typrelid
        WHERE d.classoid = 'pg_type'::regclass AND n.nspname ${nsFilter}
          AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND tc.relkind = 'c'))
       UNION ALL
       SELECT CASE WHEN d.objsubid > 0 THEN 'COLUMN'
                   ELSE CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' ELSE 'TABLE' END END,
              r.nspname, r.relname, a.attname, d.description, 2
         FROM pg_description d JOIN rel r ON r.oid = d.objoid
         LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = d.objsubid AND d.objsubid > 0
        WHERE d.classoid = 'pg_class'::regclass AND (d.objsubid = 0 OR (a.attnum IS NOT NULL AND NOT a.attisdropped))
       UNION ALL
       SELECT 'CONSTRAINT', r.nspname, r.relname, con.conname, d.description, 3
         FROM pg_description d JOIN pg_constraint con ON con.oid = d.objoid JOIN rel r ON r.oid = con.conrelid
        WHERE d.classoid = 'pg_constraint'::regclass AND con.conislocal AND con.contype IN ('p', 'u', 'c', 'x', 'f')
       UNION ALL
       SELECT 'DOMAIN CONSTRAINT', n.nspname, t.typname, con.conname, d.description, 4
         FROM pg_description d JOIN pg_constraint con ON con.oid = d.objoid JOIN pg_type t ON t.oid = con.contypid
         JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE d.classoid = 'pg_constraint'::regclass AND n.nspname ${nsFilter}
       UNION ALL
       SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname,
              pg_get_function_identity_arguments(p.oid), d.description, 5
         FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE d.classoid = 'pg_proc'::regclass AND p.prokind IN ('f', 'p') AND n.nspname ${nsFilter}
          AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_proc'::regclass AND dep.objid = p.oid AND dep.deptype IN ('e', 'i'))
       UNION ALL
       SELECT 'TRIGGER', r.nspname, r.relname, t.tgname, d.description, 6
         FROM pg_description d JOIN pg_trigger t ON t.oid = d.objoid JOIN rel r ON r.oid = t.tgrelid
        WHERE d.classoid = 'pg_trigger'::regclass AND NOT t.tgisinternal AND t.tgparentid = 0
       UNION ALL
       SELECT 'POLICY', r.nspname, r.relname, pol.polname, d.description, 7
         FROM pg_description d JOIN pg_policy pol ON pol.oid = d.objoid JOIN rel r ON r.oid = pol.polrelid
        WHERE d.classoid = 'pg_policy'::regclass
       UNION ALL
       SELECT 'RULE', r.nspname, r.relname, rw.rulename, d.description, 8
         FROM pg_description d JOIN pg_rewrite rw ON rw.oid = d.objoid JOIN rel r ON r.oid = rw.ev_class
        WHERE d.classoid = 'pg_rewrite'::regclass AND rw.rulename <> '_RETURN'
     ) c ORDER BY ord, schema, name, sub NULLS FIRST`,
  );
}

/** One `COMMENT ON … IS '…';` statement. */
export function commentOn(c: ObjectComment): string {
  const target =
    c.kind === "SCHEMA"
      ? `SCHEMA ${ident(c.name)}`
      : c.kind === "COLUMN"
        ? `COLUMN ${qualified(c.schema, c.name)}.${ident(c.sub ?? "")}`
        : c.kind === "CONSTRAINT"
          ? `CONSTRAINT ${ident(c.sub ?? "")} ON ${qualified(c.schema, c.name)}`
          : c.kind === "DOMAIN CONSTRAINT"
            ? `CONSTRAINT ${ident(c.sub ?? "")} ON DOMAIN ${qualified(c.schema, c.name)}`
            : c.kind === "FUNCTION" || c.kind === "PROCEDURE"
              ? `${c.kind} ${qualified(c.schema, c.name)}(${c.sub ?? ""})`
              : c.kind === "TRIGGER" || c.kind === "POLICY" || c.kind === "RULE"
                ? `${c.kind} ${ident(c.sub ?? "")} ON ${qualified(c.schema, c.name)}`
                : `${c.kind} ${qualified(c.schema, c.name)}`;
  return `COMMENT ON ${target} IS ${literal(c.text)};\n`;
}
