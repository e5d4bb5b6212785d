/**
 * The gateway's connections to Postgres: a bounded set per connection string, idle ones closed, and
 * a global budget so many tenants cannot exhaust the server's slots.
 *
 * Queries are pipelined (pg-wire.ts): a query joins a connection that already has queries in
 * flight when those were written less than FRESH_MS ago and fewer than PIPELINE_DEPTH are waiting,
 * so the queries of one busy moment share a write and a wake-up of one backend. A connection whose
 * oldest query has run longer than that takes nothing more (its query may be waiting on a lock):
 * only queries sent within those first milliseconds can wait behind a slow one. Work that needs a
 * connection to itself (a batch's transaction, COPY) takes an idle one exclusively.
 */
import { DatabaseError } from "pg-protocol";
import { WireConnection } from "./pg-wire.ts";
import { GatewayError, type Target } from "./protocol.ts";
import { Semaphore } from "./semaphore.ts";

export interface PoolLimits {
  /** Connections one connection string may hold at once. */
  readonly maxPerPool: number;
  /** Connections all pools together may hold open at once. */
  readonly maxTotal: number;
  /** A connection unused this long is closed, and its pool with it when it was the last. */
  readonly idleMs: number;
  /** How long a request may wait for a connection before it gets a 503. */
  readonly acquireTimeoutMs: number;
  /** Passed to Postgres as `statement_timeout` when set. */
  readonly statementTimeoutMs?: number | undefined;
}

/** Queries one connection may have in flight before another is used or opened. */
export const PIPELINE_DEPTH = 4;
/** A connection whose oldest query in flight is older than this takes no more (it may be blocked). */
export const FRESH_MS = 2;

/** An error Postgres itself reported (it carries a SQLSTATE), not a Node system error. */
export function isPostgresError(error: unknown): error is DatabaseError {
  return error instanceof DatabaseError;
}

interface Slot {
  readonly connection: WireConnection;
  exclusive: boolean;
  /** Shared queries granted this connection that have not been queued on it yet. */
  reserved: number;
  lastUsed: number;
}

interface Waiter {
  readonly exclusive: boolean;
  readonly grant: (slot: Slot) => void;
  readonly open: () => void;
}

interface Entry {
  readonly target: Target;
  readonly slots: Slot[];
  opening: number;
  readonly waiters: Waiter[];
  /** Requests on this pool: running or waiting. */
  active: number;
  lastUsed: number;
}

export interface PoolStats {
  readonly pools: number;
  readonly active: number;
  readonly open: number;
}

/** A connection held exclusively: its queries run one after the other, nothing else joins. */
export interface Session {
  query: WireConnection["query"];
}

function load(slot: Slot): number {
  return slot.connection.pending + slot.reserved;
}

function usable(slot: Slot, exclusive: boolean, now: number): boolean {
  if (slot.exclusive || slot.connection.broken) return false;
  const queued = load(slot);
  if (queued === 0) return true;
  if (exclusive || queued >= PIPELINE_DEPTH) return false;
  // Queries not written yet (the connection is still starting) have not been running at all.
  return now - (slot.connection.oldestSentAt ?? now) < FRESH_MS;
}

/** The connection to use: the fullest one still taking queries, so a busy moment shares one write. */
function pick(entry: Entry, exclusive: boolean): Slot | undefined {
  const now = performance.now();
  let best: Slot | undefined;
  for (const slot of entry.slots) {
    if (!usable(slot, exclusive, now)) continue;
    if (!best || load(slot) > load(best)) best = slot;
  }
  return best;
}

/** Marks a connection as granted, synchronously, so the next grant sees it taken. */
function claim(slot: Slot, exclusive: boolean): void {
  if (exclusive) slot.exclusive = true;
  else slot.reserved += 1;
}

export class PoolManager {
  private readonly entries = new Map<string, Entry>();
  private readonly budget: Semaphore;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly limits: PoolLimits) {
    this.budget = new Semaphore(limits.maxTotal);
    this.sweeper = setInterval(() => this.evictIdle(Date.now() - limits.idleMs), Math.max(250, limits.idleMs / 2));
    this.sweeper.unref();
  }

  stats(): PoolStats {
    let active = 0;
    for (const entry of this.entries.values()) active += entry.active;
    return { pools: this.entries.size, active, open: this.budget.size - this.budget.free };
  }

  /** Runs one query, pipelined with others on a shared connection. */
  query(target: Target, text: string, params: Parameters<Session["query"]>[1]) {
    return this.withSlot(target, false, (slot) => slot.connection.query(text, params));
  }

  /** Runs `work` on a connection of its own (a transaction, a COPY), within the same limits. */
  exclusive<T>(target: Target, work: (session: Session) => Promise<T>): Promise<T> {
    return this.withSlot(target, true, (slot) =>
      work({ query: (text, params) => slot.connection.query(text, params) }),
    );
  }

  /** `work` must queue its first query synchronously: a shared grant is reserved only until then. */
  private async withSlot<T>(target: Target, exclusive: boolean, work: (slot: Slot) => Promise<T>): Promise<T> {
    if (this.closed) throw new GatewayError(503, "57P01", "the gateway is shutting down");
    const entry = this.entryFor(target);
    entry.active += 1;
    entry.lastUsed = Date.now();
    try {
      const slot = await this.acquire(entry, exclusive);
      let running: Promise<T>;
      try {
        running = work(slot);
      } finally {
        if (!exclusive) slot.reserved -= 1;
      }
      try {
        return await running;
      } finally {
        slot.exclusive = false;
        slot.lastUsed = Date.now();
        this.settle(entry);
      }
    } finally {
      entry.active -= 1;
      entry.lastUsed = Date.now();
    }
  }

  private entryFor(target: Target): Entry {
    let entry = this.entries.get(target.key);
    if (!entry) {
      entry = { target, slots: [], opening: 0, waiters: [], active: 0, lastUsed: Date.now() };
      this.entries.set(target.key, entry);
    }
    return entry;
  }

  private acquire(entry: Entry, exclusive: boolean): Promise<Slot> {
    const ready = entry.waiters.length === 0 ? pick(entry, exclusive) : undefined;
    if (ready) {
      claim(ready, exclusive);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        entry.waiters.splice(entry.waiters.indexOf(waiter), 1);
        const what = `a connection to ${entry.target.label}`;
        reject(
          new GatewayError(503, "53300", `timed out after ${this.limits.acquireTimeoutMs} ms waiting for ${what}`),
        );
      }, this.limits.acquireTimeoutMs);
      const waiter: Waiter = {
        exclusive,
        grant: (slot) => {
          clearTimeout(timer);
          claim(slot, exclusive);
          resolve(slot);
        },
        open: () => {
          clearTimeout(timer);
          this.open(entry, exclusive).then(resolve, reject);
        },
      };
      entry.waiters.push(waiter);
      this.settle(entry);
    });
  }

  /** Hands free connections to waiters in order, and opens connections for the rest while allowed. */
  private settle(entry: Entry): void {
    while (entry.waiters.length > 0) {
      const waiter = entry.waiters[0] as Waiter;
      const slot = pick(entry, waiter.exclusive);
      if (slot) {
        entry.waiters.shift();
        waiter.grant(slot);
      } else if (entry.slots.length + entry.opening < this.limits.maxPerPool && !this.closed) {
        entry.waiters.shift();
        waiter.open();
      } else {
        return;
      }
    }
  }

  /**
   * Opens a connection for a waiter, claimed for it before anyone else can see it. With the budget
   * free this happens at once, so the queries of the same moment can join it while it starts.
   */
  private open(entry: Entry, exclusive: boolean): Promise<Slot> {
    if (this.budget.free === 0) this.makeRoom(entry);
    if (this.budget.tryAcquire()) return Promise.resolve(this.connect(entry, exclusive));
    entry.opening += 1;
    return this.budget
      .acquire(this.limits.acquireTimeoutMs, "the gateway's global connection budget")
      .then(() => this.connect(entry, exclusive))
      .finally(() => {
        entry.opening -= 1;
      });
  }

  /** A new connection on `entry`, holding a budget permit the caller took. */
  private connect(entry: Entry, exclusive: boolean): Slot {
    const connection = new WireConnection({
      host: entry.target.host,
      port: entry.target.port,
      user: entry.target.user,
      password: entry.target.password,
      database: entry.target.database,
      applicationName: "tenantry-gateway",
      statementTimeoutMs: this.limits.statementTimeoutMs,
      connectTimeoutMs: this.limits.acquireTimeoutMs,
    });
    const slot: Slot = { connection, exclusive: false, reserved: 0, lastUsed: Date.now() };
    claim(slot, exclusive);
    entry.slots.push(slot);
    // A connection that breaks (its backend terminated, the server gone) leaves at once.
    connection.onBroken = () => {
      if (this.removeSlot(entry, slot)) this.settle(entry);
    };
    return slot;
  }

  /** Closes idle connections of other pools, least recently used first, to free one budget slot. */
  private makeRoom(except: Entry): void {
    const idle: { entry: Entry; slot: Slot }[] = [];
    for (const entry of this.entries.values()) {
      if (entry === except) continue;
      for (const slot of entry.slots) if (!slot.exclusive && slot.connection.pending === 0) idle.push({ entry, slot });
    }
    const oldest = idle.sort((a, b) => a.slot.lastUsed - b.slot.lastUsed)[0];
    if (oldest) this.closeSlot(oldest.entry, oldest.slot);
  }

  /** Takes a connection off its pool and frees its budget slot; false when it was already off. */
  private removeSlot(entry: Entry, slot: Slot): boolean {
    const index = entry.slots.indexOf(slot);
    if (index < 0) return false;
    entry.slots.splice(index, 1);
    this.budget.release();
    return true;
  }

  private closeSlot(entry: Entry, slot: Slot): void {
    this.removeSlot(entry, slot);
    void slot.connection.close();
  }

  private evictIdle(olderThan: number): void {
    for (const [key, entry] of this.entries) {
      for (const slot of [...entry.slots]) {
        if (!slot.exclusive && slot.connection.pending === 0 && slot.lastUsed < olderThan) this.closeSlot(entry, slot);
      }
      if (entry.active === 0 && entry.slots.length === 0 && entry.opening === 0 && entry.lastUsed < olderThan) {
        this.entries.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const closing: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      for (const slot of [...entry.slots]) {
        this.removeSlot(entry, slot);
        closing.push(slot.connection.close());
      }
    }
    this.entries.clear();
    await Promise.allSettled(closing);
  }
}
