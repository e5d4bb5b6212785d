/** A counting semaphore with a FIFO queue and a per-waiter timeout answered as a gateway 503. */
import { GatewayError } from "./protocol.ts";

export class Semaphore {
  private available: number;
  private readonly waiters: { resolve: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(readonly size: number) {
    this.available = size;
  }

  /** Permits not taken. */
  get free(): number {
    return this.available;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a permit if one is free, without waiting. */
  tryAcquire(): boolean {
    if (this.available === 0) return false;
    this.available -= 1;
    return true;
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
