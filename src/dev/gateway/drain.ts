/**
 * Requests in flight, for a graceful stop: the gateway counts what it is serving, refuses new work
 * once draining, and lets `close()` wait until the last query finishes (or a timeout cuts it), so
 * stopping `npm run dev` or a test never kills a query half-way through a batch.
 */
export class InFlight {
  #active = 0;
  #total = 0;
  #draining = false;
  readonly #idleWaiters = new Set<() => void>();

  get active(): number {
    return this.#active;
  }

  get total(): number {
    return this.#total;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Counts one request until `done` is called. */
  start(): () => void {
    this.#active += 1;
    this.#total += 1;
    return () => {
      this.#active -= 1;
      if (this.#active === 0) for (const wake of this.#idleWaiters) wake();
    };
  }

  /** Marks the gateway as draining; false when it already was. */
  beginDrain(): boolean {
    if (this.#draining) return false;
    this.#draining = true;
    return true;
  }

  /** Resolves when nothing is in flight, or after `timeoutMs`, whichever comes first. */
  async idle(timeoutMs: number): Promise<void> {
    if (this.#active === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        wake = resolve;
        this.#idleWaiters.add(resolve);
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (wake) this.#idleWaiters.delete(wake);
  }
}
