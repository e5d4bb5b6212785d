/**
 * Bulk KV access for jobs that touch every tenant. A Worker invocation may make at most 1,000 KV
 * operations, and a bulk `get` of up to 100 keys counts as one (Workers KV limits): reading the
 * records of 10,000 tenants one by one cannot fit, 100 at a time can. `Budget` counts what one
 * invocation has spent (KV operations and control-database queries alike) so a job stops at a
 * clean point and leaves the rest to the next invocation.
 */
import type { KvStore } from "./deps.ts";

/** Keys per bulk `get` (the Workers KV maximum). */
export const KV_BULK_KEYS = 100;

/** Reads many keys, 100 per operation; spends one budget unit per operation. */
export async function readMany(
  kv: KvStore,
  keys: readonly string[],
  budget: Budget,
): Promise<Map<string, string | null>> {
  const values = new Map<string, string | null>();
  for (let start = 0; start < keys.length; start += KV_BULK_KEYS) {
    budget.spend();
    const page = await kv.get(keys.slice(start, start + KV_BULK_KEYS), "text");
    for (const [key, value] of page) values.set(key, value);
  }
  return values;
}

/** Operations one invocation may still make. */
export class Budget {
  #left: number;
  constructor(operations: number) {
    this.#left = operations;
  }
  get left(): number {
    return this.#left;
  }
  spend(n = 1): void {
    this.#left -= n;
  }
  /** Whether `n` more operations fit. */
  fits(n: number): boolean {
    return n <= this.#left;
  }
}
