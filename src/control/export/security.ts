/**
 * Row-level security: which tables have it enabled and forced, and every policy (permissive or
 * restrictive, its command, roles, USING and WITH CHECK expressions), read from the catalogs and
 * written after the data and constraints, as pg_dump does, so loading the data is not filtered.
 * Names and roles are quoted by quote.ts; the expressions are pg_get_expr's text.
 *
 * The export itself reads with `row_security = off` (snapshot.ts): a table whose policies would
 * hide rows from the exporting role fails the export instead of yielding a dump that silently lacks
 * them. On Neon the tenant roles are members of neon_superuser, which has BYPASSRLS.
 */
import { rows } from "./catalog.ts";
import { ident, qualified } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface RlsTable {
  readonly schema: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly forced: boolean;
}

export interface Policy {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly permissive: boolean;
  /** `pg_policy.polcmd`: `*` (all), r, a, w or d. */
  readonly cmd: string;
  /** Role names; empty for PUBLIC. */
  readonly roles: string[];
  readonly using: string | null;
  readonly check: string | null;
}

export async function readRlsTables(sql: ExportSql, nsFilter: string): Promise<RlsTable[]> {
  const tables = await rows<{ schema: string; name: string; enabled: string; forced: string }>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS name, c.relrowsecurity::text AS enabled, c.relforcerowsecurity::text AS forced
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR c.relforcerowsecurity) AND n.nspname ${nsFilter}
      ORDER BY 1, 2`,
  );
  return tables.map((t) => ({ ...t, enabled: t.enabled === "true", forced: t.forced === "true" }));
}

export async function readPolicies(sql: ExportSql, nsFilter: string): Promise<Policy[]> {
  const policies = await rows<{
    schema: string;
    table: string;
    name: string;
    permissive: string;
    cmd: string;
    roles: string;
    using: string | null;
    check: string | null;
  }>(
    sql,
    `SELECT n.nspname AS schema, c.relname AS table, p.polname AS name, p.polpermissive::text AS permissive,
            p.polcmd::text AS cmd,
            (SELECT coalesce(json_agg(r.rolname ORDER BY r.rolname), '[]') FROM pg_roles r WHERE r.oid = ANY (p.polroles))::text AS roles,
            pg_get_expr(p.polqual, p.polrelid) AS using, pg_get_expr(p.polwithcheck, p.polrelid) AS check
       FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname ${nsFilter} ORDER BY 1, 2, 3`,
  );
  return policies.map((p) => ({
    ...p,
    permissive: p.permissive === "true",
    roles: JSON.parse(p.roles) as string[],
  }));
}

export function rlsStatements(t: RlsTable): string {
  const name = qualified(t.schema, t.name);
  return `${t.enabled ? `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;\n` : ""}${t.forced ? `ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;\n` : ""}`;
}

const COMMANDS: Record<string, string> = { "*": "ALL", r: "SELECT", a: "INSERT", w: "UPDATE", d: "DELETE" };

export function createPolicy(p: Policy): string {
  const roles = p.roles.length > 0 ? p.roles.map(ident).join(", ") : "PUBLIC";
  return `CREATE POLICY ${ident(p.name)} ON ${qualified(p.schema, p.table)} AS ${p.permissive ? "PERMISSIVE" : "RESTRICTIVE"} FOR ${COMMANDS[p.cmd] ?? "ALL"} TO ${roles}${p.using !== null ? ` USING (${p.using})` : ""}${p.check !== null ? ` WITH CHECK (${p.check})` : ""};\n`;
}
