/**
 * A bounded least-recently-used cache with a time-to-live per entry, for per-isolate caches on the
 * request path (host → tenant). A Map iterates in insertion order, so re-inserting on every hit
 * keeps the least recently used key first: get, set and eviction are all O(1).
 *
 * Expired entries are dropped when they are read, or when they reach the old end of the map and
 * are evicted; there is no timer (an isolate may be frozen between requests, and a sweep would be
 * O(n) on the request path). `size` can therefore count entries that have expired but not yet
 * been touched; it never exceeds `maxEntries`.
 */

interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
}

export class TtlLru<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(maxEntries: number, now: () => number = Date.now) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError("TtlLru maxEntries must be a positive integer");
    }
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** The live value for `key`, now the most recently used; `undefined` when absent or expired. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (this.#now() >= entry.expiresAt) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /**
   * Stores `value` for `ttlMs` milliseconds as the most recently used entry, evicting the least
   * recently used one when full. A ttl that is not positive (or NaN) stores nothing and removes
   * any previous value, so a caller can never resurrect a stale entry by accident.
   */
  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    if (!(ttlMs > 0)) return;
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    if (this.#entries.size > this.#maxEntries) {
      // The first key in iteration order is the least recently used one.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
