/** Test helpers: databases and roles on the shared test Postgres, created through a superuser. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { neonConfig } from "@neondatabase/serverless";
import pg from "pg";
import { inject } from "vitest";
import { useGatewayFetch } from "../../src/dev/gateway/node-fetch.ts";

export const postgresUrl = () => inject("postgresUrl");
export const gatewayUrl = () => inject("gatewayUrl");

/**
 * Points `neon()` at the shared gateway, over `gatewayFetch` (node:http keep-alive) as Node code
 * talking to the local gateway does; the Worker tests cover the platform's fetch.
 */
export function useGatewayForNeon(): void {
  neonConfig.fetchEndpoint = gatewayUrl();
  useGatewayFetch(neonConfig, gatewayUrl());
}

export async function superuser<T>(work: (client: pg.Client) => Promise<T>, database = "postgres"): Promise<T> {
  const url = new URL(postgresUrl());
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  readonly name: string;
  readonly role: string;
  readonly password: string;
  /** Connection string for the database's own role. */
  readonly url: string;
}

/**
 * A fresh database owned by a fresh login role that may connect to it and nothing else
 * (CONNECT revoked from PUBLIC), named uniquely so parallel test files never collide.
 */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const suffix = randomBytes(4).toString("hex");
  const name = `${prefix}_${suffix}`;
  const role = `${prefix}_role_${suffix}`;
  const password = randomBytes(12).toString("hex");
  await superuser(async (client) => {
    await client.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await client.query(`CREATE DATABASE ${name} OWNER ${role}`);
    await client.query(`REVOKE CONNECT ON DATABASE ${name} FROM PUBLIC`);
  });
  const base = new URL(postgresUrl());
  const url = `postgresql://${role}:${password}@${base.host}/${name}`;
  return { name, role, password, url };
}

/** A fresh database to restore a dump into: its role owns `public` too, so it may create what the dump creates. */
export async function createRestoreTarget(prefix: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  await superuser((client) => client.query(`ALTER SCHEMA public OWNER TO ${db.role}`), db.name);
  return db;
}

/** Restores the plain SQL dump `file` into `url` with `psql -v ON_ERROR_STOP=1`: any failing statement fails. */
export async function restoreDump(file: string, url: string): Promise<void> {
  await promisify(execFile)("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", file], {
    maxBuffer: 64 * 1024 * 1024,
  });
}

export async function dropTestDatabase(db: TestDatabase): Promise<void> {
  await superuser(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
    await client.query(`DROP ROLE IF EXISTS ${db.role}`);
  });
}
