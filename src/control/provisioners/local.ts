/**
 * The `local` provisioner: one database and one least-privilege login role per tenant on a Postgres
 * server, driven over Neon's HTTP protocol (so it runs in the Worker through the dev gateway, and in
 * Node). Idempotent: a second call finds what exists and finishes what is missing.
 *
 * Privileges: CONNECT on the tenant database is revoked from PUBLIC and granted to the tenant role
 * only, so one tenant's role cannot even open another tenant's database. The role gets DML on the
 * tables in `public` (including ones later migrations create), never DDL, and no access to the
 * `tenantry` schema that holds the migration ledger.
 */
import { neon } from "@neondatabase/serverless";
import {
  type Provisioner,
  ProvisionerError,
  type ProvisionRequest,
  type ProvisionResult,
  type ResourceRef,
} from "./types.ts";

const SLUG = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

export interface LocalTenantNames {
  readonly database: string;
  readonly role: string;
}

export function localNames(slug: string): LocalTenantNames {
  if (!SLUG.test(slug) || slug.includes("--"))
    throw new ProvisionerError("invalid_input", `invalid tenant slug ${JSON.stringify(slug)}`);
  const base = `tenant_${slug.replaceAll("-", "_")}`;
  return { database: base, role: `${base}_app` };
}

export interface LocalProvisionerOptions {
  /** Superuser (or CREATEDB + CREATEROLE) connection string to the server's `postgres` database. */
  readonly adminUrl: string;
  /** Region names this server stands in for (data residency is simulated locally). */
  readonly regions: readonly string[];
}

/** A connection string for `database` on the same server, as the same (admin) user. */
function withDatabase(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

const randomPassword = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");

export function createLocalProvisioner(options: LocalProvisionerOptions): Provisioner {
  const admin = () => neon(options.adminUrl);
  const checkRegion = (region: string) => {
    if (!options.regions.includes(region)) {
      throw new ProvisionerError("region_unsupported", `no local target for region ${JSON.stringify(region)}`);
    }
  };

  return {
    kind: "local",
    regions: () => options.regions,

    async provision(request: ProvisionRequest): Promise<ProvisionResult> {
      checkRegion(request.region);
      const names = localNames(request.slug);
      const sql = admin();
      const password = randomPassword();
      const roleExists = (await sql.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [names.role])).length > 0;
      // Identifiers come from a validated slug and the password is hex: neither can leave its quotes.
      await sql.query(
        `${roleExists ? "ALTER" : "CREATE"} ROLE "${names.role}" LOGIN PASSWORD '${password}' NOSUPERUSER NOCREATEDB NOCREATEROLE`,
      );
      const dbExists = (await sql.query("SELECT 1 FROM pg_database WHERE datname = $1", [names.database])).length > 0;
      if (!dbExists) {
        try {
          await sql.query(`CREATE DATABASE "${names.database}"`);
        } catch (error) {
          // A concurrent call created it first (42P04 duplicate_database): same outcome.
          if ((error as { code?: string }).code !== "42P04") throw error;
        }
      }
      await sql.query(`REVOKE CONNECT, TEMPORARY ON DATABASE "${names.database}" FROM PUBLIC`);
      await sql.query(`GRANT CONNECT ON DATABASE "${names.database}" TO "${names.role}"`);

      const migrationUri = withDatabase(options.adminUrl, names.database);
      const tenantAdmin = neon(migrationUri);
      await tenantAdmin.transaction([
        tenantAdmin.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        tenantAdmin.query(`GRANT USAGE ON SCHEMA public TO "${names.role}"`),
        tenantAdmin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "${names.role}"`),
        tenantAdmin.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "${names.role}"`),
        // Tables the migration role creates later get the same grants.
        tenantAdmin.query(
          `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "${names.role}"`,
        ),
        tenantAdmin.query(
          `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "${names.role}"`,
        ),
      ]);
      const base = new URL(options.adminUrl);
      return {
        ref: { database: names.database, role: names.role },
        connectionUri: `postgresql://${names.role}:${password}@${base.host}/${names.database}`,
        migrationUri,
      };
    },

    async deprovision(request: ProvisionRequest): Promise<void> {
      const names = localNames(request.slug);
      const sql = admin();
      await sql.query(`DROP DATABASE IF EXISTS "${names.database}" WITH (FORCE)`);
      await sql.query(`DROP ROLE IF EXISTS "${names.role}"`);
    },

    async exists(request: ProvisionRequest, ref: ResourceRef): Promise<boolean> {
      const database = ref.database ?? localNames(request.slug).database;
      const rows = await admin().query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
      return rows.length > 0;
    },
  };
}
