/**
 * Demo tenants for `npm run dev` and the Worker tests, created through the control plane itself:
 * each gets its own database and least-privilege role (local provisioner), the tenant schema, its
 * own products, and KV records whose connection string is encrypted. Idempotent.
 */
import { neon } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { createLocalProvisioner } from "../control/provisioners/local.ts";
import { createUrlProvisioner } from "../control/provisioners/url.ts";
import { tenants as tenantsTable } from "../control/schema.ts";
import { createTenant } from "../control/tenants/create.ts";
import { type ControlDeps, controlDb, type KvStore } from "../control/tenants/deps.ts";
import { getTenant } from "../control/tenants/lifecycle.ts";
import { retryOnboarding } from "../control/tenants/onboarding.ts";
import { desiredRecords, projectTenant } from "../control/tenants/projection.ts";
import { tenantConnection } from "../control/tenants/secrets.ts";
import { controlMigrations } from "../generated/control-migrations.ts";
import { migrations } from "../generated/migrations.ts";
import { AppError } from "../shared/errors.ts";
import { migrateDatabase } from "../shared/migrations.ts";

export interface DemoTenant {
  readonly slug: string;
  readonly region?: string;
  readonly hosts: readonly string[];
  readonly products: readonly { sku: string; name: string; priceCents: number; stock: number }[];
}

export const DEMO_TENANTS: readonly DemoTenant[] = [
  {
    slug: "acme",
    hosts: ["acme.localhost"],
    products: [
      { sku: "ACME-SKATES", name: "Acme Rocket Skates", priceCents: 12_999, stock: 25 },
      { sku: "ACME-ANVIL", name: "Acme Anvil", priceCents: 4_999, stock: 100 },
      { sku: "ACME-MAGNET", name: "Acme Giant Magnet", priceCents: 2_499, stock: 3 },
    ],
  },
  {
    slug: "globex",
    hosts: ["globex.localhost"],
    products: [
      { sku: "GLOBEX-HAMMOCK", name: "Globex Hammock District Hammock", priceCents: 8_900, stock: 12 },
      { sku: "GLOBEX-SAUCE", name: "Globex Chili Sauce", priceCents: 799, stock: 500 },
    ],
  },
];

export const CONTROL_DATABASE = "tenantry_control";
export const LOCAL_REGIONS = ["local", "eu-central", "us-east"] as const;

/** Creates (if missing) and migrates the control database; returns its connection string. */
export async function ensureControlDatabase(adminUrl: string, name = CONTROL_DATABASE): Promise<string> {
  const admin = neon(adminUrl);
  const exists = (await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).length > 0;
  if (!exists) await admin.query(`CREATE DATABASE "${name}"`);
  // Tenant roles live on the same local server: they must not even open the control database.
  await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE "${name}" FROM PUBLIC`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrateDatabase(neon(url.toString()), controlMigrations);
  return url.toString();
}

/** A KvStore in memory: collects what the control plane projects (tests copy it into workerd's KV). */
export function memoryKv(): KvStore & { readonly entries: Map<string, string> } {
  const entries = new Map<string, string>();
  return {
    entries,
    get: (async (key: string | string[]) =>
      Array.isArray(key)
        ? new Map(key.map((k) => [k, entries.get(k) ?? null]))
        : (entries.get(key) ?? null)) as KvStore["get"],
    async put(key, value) {
      entries.set(key, value);
    },
    async delete(key) {
      entries.delete(key);
    },
    async list({ prefix }) {
      return {
        keys: [...entries.keys()].filter((k) => k.startsWith(prefix)).map((name) => ({ name })),
        list_complete: true,
      };
    },
  };
}

export interface SeedOptions {
  /** Superuser connection string of the Postgres server (local provisioner and control DB). */
  readonly adminUrl: string;
  readonly encryptionKeys: string;
  readonly kv: KvStore;
  readonly tenants?: readonly DemoTenant[];
  readonly controlUrl?: string;
}

export interface SeededTenant {
  readonly slug: string;
  readonly id: string;
  /** KV entries the control plane projected for this tenant. */
  readonly kv: readonly { key: string; value: string }[];
  /** Tenant role's connection string (never printed; tests use it to check isolation). */
  readonly url: string;
  readonly database: string;
}

export function seedDeps(
  adminUrl: string,
  controlUrl: string,
  encryptionKeys: string,
  kv: KvStore,
  actor = "seed",
): ControlDeps {
  return {
    db: controlDb(controlUrl),
    kv,
    encryptionKeys,
    provisioners: {
      local: createLocalProvisioner({ adminUrl, regions: LOCAL_REGIONS }),
      url: createUrlProvisioner(LOCAL_REGIONS, ["localhost", "127.0.0.1"]),
    },
    defaultProvisioner: "local",
    tenantBundle: migrations,
    reservedHosts: ["admin.localhost"],
    actor,
  };
}

/** Onboards each demo tenant through the control plane (or finishes/refreshes it) and adds its products. */
export async function seedDemoTenants(options: SeedOptions): Promise<SeededTenant[]> {
  const controlUrl = options.controlUrl ?? (await ensureControlDatabase(options.adminUrl));
  const deps = seedDeps(options.adminUrl, controlUrl, options.encryptionKeys, options.kv);
  const seeded: SeededTenant[] = [];
  for (const demo of options.tenants ?? DEMO_TENANTS) {
    let tenant = await getTenant(deps, demo.slug).catch((error: unknown) => {
      if (error instanceof AppError && error.status === 404) return undefined;
      throw error;
    });
    if (!tenant)
      tenant = await createTenant(deps, { slug: demo.slug, region: demo.region ?? "local", domains: [...demo.hosts] });
    else if (tenant.status !== "active") tenant = await retryOnboarding(deps, demo.slug);
    const [row] = await deps.db.select().from(tenantsTable).where(eq(tenantsTable.id, tenant.id));
    if (!row) throw new Error(`tenant ${demo.slug} vanished`);
    // KV may have been wiped (e.g. .wrangler deleted): write the projection again.
    await projectTenant(deps, row);
    const url = await tenantConnection(deps, row);
    const sql = neon(url);
    await sql.transaction(
      demo.products.map((p) =>
        sql.query(
          "INSERT INTO products (sku, name, price_cents, stock) VALUES ($1, $2, $3, $4) ON CONFLICT (sku) DO NOTHING",
          [p.sku, p.name, p.priceCents, p.stock],
        ),
      ),
    );
    const records = desiredRecords(row, tenant.domainDetails);
    seeded.push({
      slug: demo.slug,
      id: row.id,
      kv: [...records].map(([key, record]) => ({ key, value: JSON.stringify(record) })),
      url,
      database: row.resourceRef?.database ?? "",
    });
  }
  return seeded;
}
