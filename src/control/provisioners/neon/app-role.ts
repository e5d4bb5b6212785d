/**
 * The tenant's app role on its Neon branch, made with SQL as the owner role rather than through
 * the Neon API. Neon makes every role it creates through the API a member of `neon_superuser`
 * (CREATEROLE, CREATEDB, BYPASSRLS, pg_read_all_data, pg_write_all_data): an app role made that way
 * could read and write the `tenantry` migration ledger and create roles on its branch. A role
 * created with SQL has only basic privileges ("Manage roles", neon.tech/docs/manage/roles), so
 * this one gets exactly what the `local` provisioner's role gets (local.ts): CONNECT on its own
 * database, USAGE on `public`, DML on its tables and sequences (also the ones later migrations
 * create), never DDL and nothing in `tenantry`. A role left over from an earlier API-made run is
 * taken out of `neon_superuser` here; tenants provisioned before this are moved by the next fleet
 * apply run (fleet/consumer.ts runs the same statements).
 *
 * Neon's connection_uri endpoint does not know the password of a role created with SQL, so the
 * pooled URI is the owner's pooled URI with the app role's name and password in it.
 */
import { neon } from "@neondatabase/serverless";
import { ProvisionerError } from "../types.ts";

const randomPassword = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");

/** The statements that give `role` DML rights only in the current database; `role` is a validated name. */
export function appRoleGrants(role: string): string[] {
  // Names come from validated slugs (names.ts); anything else never reaches SQL.
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(role)) throw new ProvisionerError("invalid_input", "invalid app role name");
  const r = `"${role}"`;
  return [
    // Only the tenant's own roles may open its database (current_database(): the name is the owner's to know).
    `DO $$ BEGIN
       EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
       EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${r}', current_database());
     END $$`,
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    `GRANT USAGE ON SCHEMA public TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${r}`,
    // An app role an earlier run made through the API: out of neon_superuser (no-op where there is none).
    `DO $$ BEGIN
       IF EXISTS (SELECT 1 FROM pg_auth_members m
                  JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                  WHERE g.rolname = 'neon_superuser' AND u.rolname = '${role}') THEN
         REVOKE neon_superuser FROM ${r};
       END IF;
     END $$`,
  ];
}

/**
 * Creates (or, on a resumed run, resets the password of) the app role `role` as the owner behind
 * `ownerUri`, grants it DML only, and returns its pooled connection string, built from
 * `ownerPooledUri`. The password is new on every call, as the local provisioner's is: the caller
 * stores the URI it gets back.
 */
export async function ensureAppRole(ownerUri: string, ownerPooledUri: string, role: string): Promise<string> {
  const sql = neon(ownerUri);
  const password = randomPassword();
  const rows = (await sql.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])) as unknown[];
  // The name comes from a validated slug and the password is hex: neither can leave its quotes.
  const createOrAlter = `${rows.length > 0 ? "ALTER" : "CREATE"} ROLE "${role}" LOGIN PASSWORD '${password}' NOCREATEDB NOCREATEROLE`;
  await sql.transaction([sql.query(createOrAlter), ...appRoleGrants(role).map((statement) => sql.query(statement))]);
  const uri = new URL(ownerPooledUri);
  uri.username = role;
  uri.password = password;
  return uri.toString();
}
