/**
 * Code in the database: functions and procedures (pg_get_functiondef), triggers
 * (pg_get_triggerdef, with their enabled state) and rules (pg_get_ruledef). Postgres renders each
 * as a complete statement with every name quoted; members of an extension are left to the
 * extension, and aggregates are not exported (see docs/exports.md).
 *
 * Functions come in two groups: those whose arguments and result name no table, view or
 * materialized view's row type are written before the tables (a column default or generated
 * column may call them); the others right after the tables (before the views that may call them). The dump sets `check_function_bodies = false`, so a body
 * that uses tables created later is accepted, as in pg_dump's output. Triggers and rules are
 * written after the data, so loading it fires nothing.
 */
import { rows } from "./catalog.ts";
import { ident, qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface Routine {
  readonly def: string;
  /** Whether its signature names a relation's row type (see above). */
  readonly onRelations: boolean;
}

export interface Trigger {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly def: string;
  /** `pg_trigger.tgenabled`: O (origin, the default), D (disabled), R (replica) or A (always). */
  readonly enabled: string;
}

/** Neither an extension's member nor created with another object (a range type's constructors). */
const standalone = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype IN ('e', 'i'))`;

export async function readRoutines(sql: ExportSql, nsFilter: string): Promise<Routine[]> {
  const routines = await rows<{ def: string; on_relations: string }>(
    sql,
    `SELECT pg_get_functiondef(p.oid) AS def,
            EXISTS (SELECT 1 FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
                     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                       AND (t.oid = p.prorettype OR t.oid = ANY (p.proargtypes::oid[]) OR t.oid = ANY (coalesce(p.proallargtypes, '{}'::oid[]))))::text AS on_relations
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prokind IN ('f', 'p') AND n.nspname ${nsFilter} AND ${standalone("pg_proc", "p.oid")}
      ORDER BY p.oid`,
  );
  return routines.map((r) => ({ def: r.def, onRelations: r.on_relations === "true" }));
}

export const createRoutine = (r: Routine) => `${r.def.trimEnd()};\n`;

export function readTriggers(sql: ExportSql, nsFilter: string): Promise<Trigger[]> {
  return rows<Trigger>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name, pg_get_triggerdef(t.oid) AS def, t.tgenabled::text AS enabled
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND n.nspname ${nsFilter} ORDER BY 1, 2, 3`,
  );
}

const ENABLE: Record<string, string> = { D: "DISABLE", R: "ENABLE REPLICA", A: "ENABLE ALWAYS" };

export function createTrigger(t: Trigger): string {
  const state = ENABLE[t.enabled];
  return `${t.def};\n${state ? `ALTER TABLE ${qualified(t.schema, t.table)} ${state} TRIGGER ${ident(t.name)};\n` : ""}`;
}

export async function readRules(sql: ExportSql, nsFilter: string): Promise<string[]> {
  const rules = await rows<{ def: string }>(
    sql,
    `SELECT pg_get_ruledef(r.oid) AS def FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE r.rulename <> '_RETURN' AND n.nspname ${nsFilter} ORDER BY n.nspname, c.relname, r.rulename`,
  );
  return rules.map((r) => r.def);
}

/** pg_get_ruledef's text, a complete `CREATE RULE … ;` statement. */
export const createRule = (def: string) => `${def.trimEnd().replace(/;$/, "")};\n`;
