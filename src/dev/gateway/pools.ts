/**
 * One bounded `pg` pool per connection string, idle pools evicted, and a global budget on
 * checked-out connections so many tenants cannot exhaust the Postgres server's slots.
 */
import pg from "pg";
import { GatewayError, type Target } from "./protocol.ts";

export interface PoolLimits {
  /** Connections one connection string may hold at once. */
  readonly maxPerPool: number;
  /** Connections all pools together may hold checked out at once. */
  readonly maxTotal: number;
  /** A pool unused this long is closed; its idle connections go with it. */
  readonly idleMs: number;
  /** How long a request may wait for a connection before it gets a 503. */
  readonly acquireTimeoutMs: number;
  /** Passed to Postgres as `statement_timeout` when set. */
  readonly statementTimeoutMs?: number | undefined;
}

/** A counting semaphore with a FIFO queue and per-waiter timeout. */
class Semaphore {
  private available: number;
  private readonly waiters: { resolve: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(readonly size: number) {
    this.available = size;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  acquire(timeoutMs: number, what: string): Promise<void> {
    if (this.available > 0) {
      this.available -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new GatewayError(503, "53300", `timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve();
    } else {
      this.available += 1;
    }
  }
}

interface Entry {
  readonly pool: pg.Pool;
  readonly slots: Semaphore;
  active: number;
  lastUsed: number;
}

/**
 * An error Postgres itself reported (it carries a SQLSTATE). Node system errors such as EPIPE also
 * have five-letter codes, so the class decides, not the shape of the code.
 */
export function isPostgresError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError;
}

/** Every type parser returns Postgres' text unchanged: the driver parses it on its side. */
const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export interface PoolStats {
  readonly pools: number;
  readonly active: number;
  readonly open: number;
}

export class PoolManager {
  private readonly entries = new Map<string, Entry>();
  private readonly budget: Semaphore;
  private readonly sweeper: NodeJS.Timeout;
  private open = 0;
  private closed = false;

  constructor(private readonly limits: PoolLimits) {
    this.budget = new Semaphore(limits.maxTotal);
    this.sweeper = setInterval(() => this.evictIdle(Date.now() - limits.idleMs), Math.max(250, limits.idleMs / 2));
    this.sweeper.unref();
  }

  stats(): PoolStats {
    let active = 0;
    for (const entry of this.entries.values()) active += entry.active;
    return { pools: this.entries.size, active, open: this.open };
  }

  private entryFor(target: Target): Entry {
    const existing = this.entries.get(target.key);
    if (existing) return existing;
    const pool = new pg.Pool({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      max: this.limits.maxPerPool,
      idleTimeoutMillis: this.limits.idleMs,
      connectionTimeoutMillis: this.limits.acquireTimeoutMs,
      application_name: "tenantry-gateway",
      types: RAW_TEXT_TYPES,
      ...(this.limits.statementTimeoutMs ? { statement_timeout: this.limits.statementTimeoutMs } : {}),
    });
    pool.on("connect", () => {
      this.open += 1;
    });
    pool.on("remove", () => {
      this.open -= 1;
    });
    // An idle client whose server went away: the pool drops it; nothing to answer.
    pool.on("error", () => {});
    const entry: Entry = { pool, slots: new Semaphore(this.limits.maxPerPool), active: 0, lastUsed: Date.now() };
    this.entries.set(target.key, entry);
    return entry;
  }

  /** Closes pools with no connection in use, least recently used first, until `need` are free. */
  private makeRoom(need: number, except: Entry): void {
    const idle = [...this.entries.entries()]
      .filter(([, entry]) => entry !== except && entry.active === 0 && entry.pool.totalCount > 0)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    let freed = 0;
    for (const [key, entry] of idle) {
      if (this.open + need - freed <= this.limits.maxTotal) break;
      freed += entry.pool.totalCount;
      this.entries.delete(key);
      void entry.pool.end();
    }
  }

  private evictIdle(olderThan: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.active === 0 && entry.lastUsed < olderThan) {
        this.entries.delete(key);
        void entry.pool.end();
      }
    }
  }

  /** Runs `work` with a client for `target`, within the per-pool and global limits. */
  async withClient<T>(target: Target, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new GatewayError(503, "57P01", "the gateway is shutting down");
    const entry = this.entryFor(target);
    entry.active += 1;
    entry.lastUsed = Date.now();
    try {
      await entry.slots.acquire(this.limits.acquireTimeoutMs, `a connection to ${target.label}`);
      try {
        await this.budget.acquire(this.limits.acquireTimeoutMs, "the gateway's global connection budget");
        try {
          if (entry.pool.idleCount === 0) this.makeRoom(1, entry);
          const client = await entry.pool.connect();
          let broken: Error | undefined;
          // The pool listens for errors only on idle clients. A checked-out one whose server goes
          // away between two queries (its database dropped WITH (FORCE), the backend terminated)
          // emits "error" with no query to take it: unheard, that would crash the process.
          const onError = (error: Error) => {
            broken ??= error;
          };
          client.on("error", onError);
          try {
            return await work(client);
          } catch (error) {
            // A connection-level failure leaves the client unusable: destroy rather than reuse it.
            if (!isPostgresError(error) || error.severity === "FATAL") {
              broken ??= error instanceof Error ? error : new Error(String(error));
            }
            throw error;
          } finally {
            client.removeListener("error", onError);
            client.release(broken);
          }
        } finally {
          this.budget.release();
        }
      } finally {
        entry.slots.release();
      }
    } finally {
      entry.active -= 1;
      entry.lastUsed = Date.now();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const pools = [...this.entries.values()].map((entry) => entry.pool.end());
    this.entries.clear();
    await Promise.allSettled(pools);
  }
}
