/**
 * One Worker invocation as the platform counts it, for benches that run the project's handlers in
 * Node: its KV operations, subrequests (HTTP queries, Queue sends) and simultaneously open
 * connections, with the limits of a paid Workers plan. Calls made inside `runInvocation` are
 * attributed to it through AsyncLocalStorage; `invocationFetch` wraps `neonConfig.fetchFunction`.
 *
 * Like the platform, it does not let an invocation through a limit: the 1,001st KV operation and
 * the subrequest past the limit throw, a seventh simultaneous connection waits for a free one,
 * and a `sendBatch` over 100 messages or 256 KB throws. Every such refusal is recorded.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export const WORKER_LIMITS = {
  /** KV operations per invocation (a bulk read counts as one). */
  kvOperations: 1_000,
  /** Subrequests per invocation: the Paid default (older docs and the Free plan: 1,000 / 50). */
  subrequests: 10_000,
  /** Simultaneously open connections per invocation; further calls wait. */
  connections: 6,
  /** Queue `sendBatch`: messages and bytes per call. */
  batchMessages: 100,
  batchBytes: 256 * 1024,
} as const;

export class LimitExceeded extends Error {
  override readonly name = "LimitExceeded";
}

type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export class Invocation {
  kvOperations = 0;
  subrequests = 0;
  open = 0;
  peakOpen = 0;
  /** Calls that waited for one of the 6 connections. */
  connectionWaits = 0;
  /** Limits refused, as text (empty: none). */
  readonly refusals: string[] = [];
  private readonly waiting: (() => void)[] = [];

  constructor(readonly kind: string) {}

  /** Runs `call` on one of the invocation's connections, waiting for a free one if all 6 are open. */
  async connection<T>(call: () => Promise<T>): Promise<T> {
    if (this.open >= WORKER_LIMITS.connections) {
      this.connectionWaits += 1;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.open += 1;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    try {
      return await call();
    } finally {
      this.open -= 1;
      this.waiting.shift()?.();
    }
  }

  kvOperation(): void {
    this.kvOperations += 1;
    if (this.kvOperations > WORKER_LIMITS.kvOperations) this.refuse(`KV operation ${this.kvOperations}`);
  }

  subrequest(): void {
    this.subrequests += 1;
    if (this.subrequests > WORKER_LIMITS.subrequests) this.refuse(`subrequest ${this.subrequests}`);
  }

  refuse(what: string): never {
    this.refusals.push(what);
    throw new LimitExceeded(`${this.kind} invocation: ${what} is over the platform limit`);
  }
}

const current = new AsyncLocalStorage<Invocation>();

export function runInvocation<T>(invocation: Invocation, work: () => Promise<T>): Promise<T> {
  return current.run(invocation, work);
}

/** A fetch function that counts each call as a subrequest of the current invocation. */
export function invocationFetch(inner: FetchFunction): FetchFunction {
  return async (input, init) => {
    const invocation = current.getStore();
    if (!invocation) return inner(input, init);
    invocation.subrequest();
    return invocation.connection(() => inner(input, init));
  };
}

/** The KV operations the project uses, counted against `invocation`. */
export interface KvLike {
  get(key: string, type?: unknown): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: { prefix: string; cursor?: string | undefined }): Promise<{
    keys: { name: string }[];
    list_complete: boolean;
    cursor?: string | undefined;
  }>;
}

export function countingKv(inner: KvLike, invocation: Invocation): KvLike {
  const counted =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A) => {
      invocation.kvOperation();
      return invocation.connection(() => fn(...args));
    };
  return {
    get: counted((key: string, type?: unknown) => inner.get(key, type)),
    put: counted((key: string, value: string) => inner.put(key, value)),
    delete: counted((key: string) => inner.delete(key)),
    list: counted((options: { prefix: string; cursor?: string | undefined }) => inner.list(options)),
  };
}

/** A Queue producer binding whose sends count as subrequests and keep to sendBatch's limits. */
export function countingProducer(
  send: (bodies: readonly unknown[]) => Promise<void>,
  invocation: Invocation,
): { send(body: unknown): Promise<void>; sendBatch(messages: readonly { body: unknown }[]): Promise<void> } {
  const sendBatch = async (messages: readonly { body: unknown }[]) => {
    invocation.subrequest();
    if (messages.length > WORKER_LIMITS.batchMessages) invocation.refuse(`sendBatch of ${messages.length} messages`);
    const bytes = messages.reduce((sum, m) => sum + Buffer.byteLength(JSON.stringify(m.body)), 0);
    if (bytes > WORKER_LIMITS.batchBytes) invocation.refuse(`sendBatch of ${bytes} bytes`);
    await invocation.connection(() => send(messages.map((m) => m.body)));
  };
  return { sendBatch, send: (body) => sendBatch([{ body }]) };
}
