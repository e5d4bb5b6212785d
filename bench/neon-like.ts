/**
 * A Neon-like latency profile for benches: what a fleet pays that a database on loopback does not.
 *
 * - Every request pays one round trip (`rttMs`, default 20 ms): an HTTP query of
 *   `@neondatabase/serverless` waits it before it goes to the gateway (`fetchFunction`), and a
 *   Postgres wire connection goes through a TCP relay (`startRelay`) that holds every chunk half of
 *   it in each direction (one round trip per protocol exchange).
 * - A database idle for longer than `idleMs` (default 5 min, Neon's default suspend timeout) is
 *   suspended: the first query to it waits `wakeMs` more (default 400 ms) while its compute starts;
 *   queries arriving during the wake wait for the same wake. `suspendAll()` suspends every database
 *   (a rollout reaches tenants that have been idle for hours).
 *
 * Both paths of a bench use one profile, so the project path and the baseline pay the same.
 * The TCP and TLS handshakes of a real connection are not modelled, which favours the baseline.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface NeonLikeOptions {
  /** One network round trip, ms. */
  readonly rttMs: number;
  /** Extra wait of the first query to a suspended database, ms. */
  readonly wakeMs: number;
  /** A database idle for longer than this is suspended, ms. */
  readonly idleMs: number;
}

export const NEON_LIKE_DEFAULTS: NeonLikeOptions = { rttMs: 20, wakeMs: 400, idleMs: 5 * 60_000 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** The database a `neon()` request is for: host and name from its Neon-Connection-String header. */
export function databaseOfRequest(init: RequestInit | undefined): string {
  const headers = new Headers(init?.headers);
  const connection = headers.get("neon-connection-string");
  if (!connection) return "";
  const url = new URL(connection);
  return `${url.hostname}:${url.port}${url.pathname}`;
}

/** The `database` parameter of a Postgres StartupMessage (the first chunk a client sends), if any. */
export function databaseOfStartup(chunk: Buffer): string | undefined {
  if (chunk.length < 8 || chunk.readInt32BE(4) !== 196_608) return undefined;
  const parts = chunk.subarray(8, chunk.readInt32BE(0)).toString("utf8").split("\0");
  const at = parts.indexOf("database");
  return at >= 0 ? parts[at + 1] : undefined;
}

export class NeonLikeProfile {
  readonly options: NeonLikeOptions;
  private readonly lastActive = new Map<string, number>();
  private readonly waking = new Map<string, Promise<void>>();
  /** Wake-ups paid so far. */
  wakes = 0;
  /** Requests (HTTP queries and wire connections) that paid the profile so far. */
  requests = 0;

  constructor(options: Partial<NeonLikeOptions> = {}) {
    this.options = { ...NEON_LIKE_DEFAULTS, ...options };
  }

  /** Every database counts as idle for long: the next query to each one wakes it. */
  suspendAll(): void {
    this.lastActive.clear();
  }

  /** Resolves once `database` is awake: at once when it was active within `idleMs`. */
  awake(database: string): Promise<void> {
    const pending = this.waking.get(database);
    if (pending) return pending;
    const last = this.lastActive.get(database);
    const now = performance.now();
    if (last !== undefined && now - last <= this.options.idleMs) {
      this.lastActive.set(database, now);
      return Promise.resolve();
    }
    this.wakes += 1;
    const woken = sleep(this.options.wakeMs).then(() => {
      this.waking.delete(database);
      this.lastActive.set(database, performance.now());
    });
    this.waking.set(database, woken);
    return woken;
  }

  /** Marks `database` active now (a reply came back from it). */
  touch(database: string): void {
    this.lastActive.set(database, performance.now());
  }

  /** What one HTTP query pays before it reaches the database: a wake-up if idle, one round trip. */
  async beforeQuery(database: string): Promise<void> {
    this.requests += 1;
    await Promise.all([this.awake(database), sleep(this.options.rttMs)]);
  }

  /** A `neonConfig.fetchFunction` charging every query the profile, then calling `inner`. */
  fetchFunction(inner: FetchFunction = fetch): FetchFunction {
    return async (input, init) => {
      const database = databaseOfRequest(init);
      await this.beforeQuery(database);
      const response = await inner(input, init);
      this.touch(database);
      return response;
    };
  }

  /**
   * A TCP relay to a Postgres server at `host:port`: every chunk waits half a round trip in each
   * direction (order kept), and a connection's first chunk (its StartupMessage, naming the
   * database) waits for the database to be awake first.
   */
  async startRelay(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
    const half = this.options.rttMs / 2;
    const sockets = new Set<Socket>();
    const server: Server = createServer((client) => {
      const upstream = createConnection({ host, port });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.setNoDelay(true);
      }
      this.requests += 1;
      let database: string | undefined;
      let ready: Promise<void> | undefined;
      client.on("data", (chunk: Buffer) => {
        if (!ready) {
          database = databaseOfStartup(chunk) ?? "";
          ready = this.awake(database);
        }
        void ready.then(() => setTimeout(() => upstream.write(chunk), half));
      });
      upstream.on("data", (chunk: Buffer) => {
        if (database !== undefined) this.touch(database);
        setTimeout(() => client.write(chunk), half);
      });
      // The client's end and close queue behind its chunks, which may wait for a wake-up.
      const afterClient = (fn: () => void) => void (ready ?? Promise.resolve()).then(() => setTimeout(fn, half));
      client.on("end", () => afterClient(() => upstream.end()));
      client.on("close", () => afterClient(() => upstream.destroy()));
      upstream.on("end", () => setTimeout(() => client.end(), half));
      upstream.on("close", () => setTimeout(() => client.destroy(), half + 1));
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const)
        from.on("error", () => to.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("the relay has no port");
    return {
      port: address.port,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
  }
}
