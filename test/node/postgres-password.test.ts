/**
 * The embedded dev Postgres superuser gets a password generated per data folder (issue 16,
 * finding 1), stored beside the folder for the dev tools, and never the well-known `postgres`;
 * a folder initialised with the old password is moved off it on its next start.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type PostgresServer, startEmbeddedPostgres } from "../../src/dev/postgres.ts";
import { readPassword } from "../../src/dev/postgres-password.ts";

const folders: string[] = [];
const servers: PostgresServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function folder(): Promise<{ parent: string; dataDir: string }> {
  const parent = await mkdtemp(join(tmpdir(), "tenantry-pw-"));
  folders.push(parent);
  return { parent, dataDir: join(parent, "data") };
}

async function start(dataDir: string, password?: string): Promise<PostgresServer> {
  const server = await startEmbeddedPostgres({ dataDir, ...(password ? { password } : {}) });
  servers.push(server);
  return server;
}

async function canConnect(server: PostgresServer, password: string): Promise<boolean> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.user,
    password,
    database: "postgres",
  });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function stop(server: PostgresServer): Promise<void> {
  await server.stop();
  servers.splice(servers.indexOf(server), 1);
}

describe("the dev superuser password", () => {
  it("is generated per data folder, stored beside it for the owner only, and reused", async () => {
    const { parent, dataDir } = await folder();
    const first = await start(dataDir);
    expect(first.password).not.toBe("postgres");
    expect(first.password).toMatch(/^[0-9a-f]{32}$/);
    expect(await readPassword(parent)).toBe(first.password);
    // Owner-only; as root the check is moot (root reads anything), but the mode is still set.
    expect((await stat(join(parent, "superuser-password"))).mode & 0o077).toBe(0);
    expect(await canConnect(first, "postgres")).toBe(false);
    expect(await canConnect(first, first.password)).toBe(true);
    await stop(first);

    const again = await start(dataDir);
    expect(again.password).toBe(first.password);
    expect(await canConnect(again, again.password)).toBe(true);
    await stop(again);

    const other = await folder();
    const second = await start(other.dataDir);
    expect(second.password).not.toBe(first.password);
    await stop(second);
  });

  it("moves a folder initialised with the old `postgres` password to a fresh one", async () => {
    const { parent, dataDir } = await folder();
    // What earlier versions did: initialise with the well-known password and store nothing.
    await stop(await start(dataDir, "postgres"));
    expect(await readPassword(parent)).toBeUndefined();

    const upgraded = await start(dataDir);
    expect(upgraded.password).not.toBe("postgres");
    expect(await readPassword(parent)).toBe(upgraded.password);
    expect(await canConnect(upgraded, "postgres")).toBe(false);
    expect(await canConnect(upgraded, upgraded.password)).toBe(true);
  });

  it("gives throwaway clusters a random password too", async () => {
    const throwaway = await startEmbeddedPostgres();
    servers.push(throwaway);
    expect(throwaway.password).not.toBe("postgres");
    expect(await canConnect(throwaway, throwaway.password)).toBe(true);
  });
});
