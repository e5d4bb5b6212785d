/**
 * Database-level isolation, checked in Postgres itself through the gateway: a tenant's app role can
 * open its own database only, cannot run DDL there, and cannot read the migration ledger. These hold
 * even if the edge were fooled into using the wrong connection string.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { tenant } from "./support.ts";

interface DbError {
  code?: string;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function withUser(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

/** Runs one statement, expecting Postgres to refuse it: resolves with the SQLSTATE. */
async function refusal(url: string, statement: string): Promise<string | undefined> {
  try {
    await neon(url).query(statement);
  } catch (error) {
    return (error as DbError).code;
  }
  throw new Error(`expected Postgres to refuse: ${statement}`);
}

beforeAll(() => {
  neonConfig.fetchEndpoint = inject("gatewayUrl");
});

describe("a tenant role cannot reach another tenant's database", () => {
  it("each app role works on its own database (control)", async () => {
    for (const slug of ["acme", "globex", "initech"]) {
      const t = tenant(slug);
      const [row] = (await neon(t.url).query("SELECT current_database() AS db, current_user AS who")) as {
        db: string;
        who: string;
      }[];
      expect(row).toEqual({ db: t.database, who: `${t.database}_app` });
    }
  });

  it.each([
    ["acme", "globex"],
    ["globex", "acme"],
    ["acme", "initech"],
    ["initech", "globex"],
  ])("%s's role on %s's database → 42501 (no CONNECT privilege)", async (from, to) => {
    const swapped = withDatabase(tenant(from).url, tenant(to).database);
    expect(new URL(swapped).username).toBe(`${tenant(from).database}_app`);
    expect(await refusal(swapped, "SELECT 1")).toBe("42501");
    expect(await refusal(swapped, "SELECT count(*) FROM products")).toBe("42501");
  });

  it("a tenant role cannot read or change the control database's tables", async () => {
    // On the shared local server PUBLIC keeps CONNECT on the control database (see the report), so
    // what protects it here is table privileges: none for tenant roles.
    const inControl = withDatabase(tenant("acme").url, new URL(inject("controlUrl")).pathname.slice(1));
    for (const table of ["tenants", "domains", "audit_log"]) {
      expect(await refusal(inControl, `SELECT * FROM ${table} LIMIT 1`)).toBe("42501");
    }
    expect(await refusal(inControl, "UPDATE tenants SET status = 'active'")).toBe("42501");
    expect(await refusal(inControl, "DELETE FROM audit_log")).toBe("42501");
    expect(await refusal(inControl, "CREATE TABLE public.evil (id int)")).toBe("42501");
  });

  it("another tenant's role name with this tenant's password is refused (28P01)", async () => {
    const acme = new URL(tenant("acme").url);
    const borrowed = withUser(tenant("globex").url, acme.username, acme.password);
    // acme's user and password on globex's database: authentication passes, CONNECT does not.
    expect(await refusal(borrowed, "SELECT 1")).toBe("42501");
    const wrongPassword = withUser(tenant("globex").url, new URL(tenant("globex").url).username, acme.password);
    expect(await refusal(wrongPassword, "SELECT 1")).toBe("28P01");
  });

  it("the app role cannot grant itself what it lacks", async () => {
    const acme = tenant("acme");
    expect(await refusal(acme.url, `GRANT CONNECT ON DATABASE "${tenant("globex").database}" TO CURRENT_USER`)).toBe(
      "42501",
    );
    expect(await refusal(acme.url, "ALTER ROLE CURRENT_USER CREATEDB")).toBe("42501");
  });
});

describe("the app role inside its own database", () => {
  it("can use the store tables (DML)", async () => {
    const sql = neon(tenant("acme").url);
    const rows = (await sql.query("SELECT count(*)::int AS n FROM products")) as { n: number }[];
    expect(rows[0]?.n).toBeGreaterThan(0);
  });

  it.each([
    ["CREATE TABLE", "CREATE TABLE evil (id int)"],
    ["DROP TABLE", "DROP TABLE products"],
    ["ALTER TABLE", "ALTER TABLE products ADD COLUMN evil text"],
    ["TRUNCATE", "TRUNCATE products"],
    ["CREATE SCHEMA", "CREATE SCHEMA evil"],
    ["CREATE FUNCTION", "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'"],
    ["CREATE TEMP TABLE", "CREATE TEMP TABLE evil (id int)"],
  ])("cannot run DDL: %s → 42501", async (_name, statement) => {
    expect(await refusal(tenant("acme").url, statement)).toBe("42501");
  });

  it("the store tables are intact after the refused DDL", async () => {
    const sql = neon(tenant("acme").url);
    const columns = (await sql.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'products' AND column_name = 'evil'",
    )) as unknown[];
    expect(columns).toEqual([]);
    const tables = (await sql.query("SELECT to_regclass('public.evil') IS NULL AS absent")) as { absent: boolean }[];
    expect(tables[0]?.absent).toBe(true);
  });

  it("cannot read or write the migration ledger (tenantry.migrations) → 42501", async () => {
    const url = tenant("acme").url;
    expect(await refusal(url, "SELECT * FROM tenantry.migrations")).toBe("42501");
    expect(await refusal(url, "INSERT INTO tenantry.migrations (name, checksum) VALUES ('forged', 'x')")).toBe("42501");
    expect(await refusal(url, "DELETE FROM tenantry.migrations")).toBe("42501");
  });

  it("the ledger exists and is intact (checked as the superuser)", async () => {
    const admin = neon(withDatabase(inject("adminUrl"), tenant("acme").database));
    const rows = (await admin.query("SELECT name FROM tenantry.migrations WHERE name = 'forged'")) as unknown[];
    expect(rows).toEqual([]);
    const all = (await admin.query("SELECT count(*)::int AS n FROM tenantry.migrations")) as { n: number }[];
    expect(all[0]?.n).toBeGreaterThan(0);
  });
});
