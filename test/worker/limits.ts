/**
 * A limits harness for handler invocations: Cloudflare enforces per-invocation limits that neither
 * workerd nor miniflare enforce locally, so a job that only works for a small fleet passes every
 * test until production. `invoke()` runs one handler invocation with its KV, R2 and Queue bindings
 * and the outgoing `fetch` (the Neon HTTP driver's transport) wrapped by counters, and throws
 * `LimitExceeded` at the first operation over a limit, the way the platform fails the call.
 *
 * Limits (Cloudflare docs: Workers limits, KV limits, Queues limits; docs/limits.md):
 * - 1,000 KV operations per invocation; a bulk `get` of up to 100 keys counts as one;
 * - subrequests: 1,000 here (the old Paid default; Paid now allows 10,000 by default, Free 50),
 *   counting fetch, KV, R2 and Queue calls, so a job that passes here has a tenfold margin;
 * - 6 simultaneous open connections (fetch, KV, R2, Queue send); the platform queues the 7th,
 *   here it fails, so code never relies on more parallelism than it gets;
 * - a Queue `sendBatch` of at most 100 messages and 256 KB, a message of at most 128 KB.
 * Memory (128 MB per isolate) is not measured: workerd does not expose it per invocation.
 *
 * Queue messages are not sent to miniflare's queue: they go to an outbox the test drains through
 * the Worker's own `queue()` handler (`drainQueue`), each batch one more metered invocation.
 */
import {
  createExecutionContext,
  createMessageBatch,
  env,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import worker from "../../src/worker/index.ts";

export const LIMITS = {
  kvOperations: 1_000,
  subrequests: 1_000,
  connections: 6,
  batchMessages: 100,
  batchBytes: 256 * 1024,
  messageBytes: 128 * 1024,
} as const;

export type LimitName =
  | "kvOperations"
  | "subrequests"
  | "connections"
  | "batchMessages"
  | "batchBytes"
  | "messageBytes";

export class LimitExceeded extends Error {
  constructor(
    readonly limit: LimitName,
    readonly count: number,
    readonly invocation: string,
  ) {
    super(`${invocation}: ${limit} ${count} > ${LIMITS[limit]}`);
    this.name = "LimitExceeded";
  }
}

/** What one invocation used. */
export interface Usage {
  readonly name: string;
  kvOperations: number;
  subrequests: number;
  /** Peak of simultaneously open connections. */
  connections: number;
  open: number;
  /** Largest sendBatch (messages, bytes). */
  batchMessages: number;
  batchBytes: number;
}

export interface Outboxed {
  readonly body: unknown;
}

/** Faults a test injects into the wrapped KV (e.g. a write that fails after the control commit). */
export interface Faults {
  failPut?: ((key: string) => boolean) | undefined;
}

export interface Harness {
  /** Messages sent by invocations, not yet handed to `queue()`. */
  readonly outbox: Outboxed[];
  /** Usage of every invocation so far, in order. */
  readonly usages: Usage[];
  faults: Faults;
  /** The environment one invocation sees: `base` with its bindings metered by `usage`. */
  meteredEnv(usage: Usage): Env;
}

function newUsage(name: string): Usage {
  return { name, kvOperations: 0, subrequests: 0, connections: 0, open: 0, batchMessages: 0, batchBytes: 0 };
}

function check(usage: Usage, limit: LimitName, count: number): void {
  if (count > LIMITS[limit]) throw new LimitExceeded(limit, count, usage.name);
}

/** Counts one call against the subrequest and connection limits, open for its duration. */
async function connection<T>(usage: Usage, call: () => Promise<T>): Promise<T> {
  usage.subrequests += 1;
  check(usage, "subrequests", usage.subrequests);
  usage.open += 1;
  usage.connections = Math.max(usage.connections, usage.open);
  try {
    check(usage, "connections", usage.open);
    return await call();
  } finally {
    usage.open -= 1;
  }
}

function kvOperation<T>(usage: Usage, call: () => Promise<T>): Promise<T> {
  usage.kvOperations += 1;
  check(usage, "kvOperations", usage.kvOperations);
  return connection(usage, call);
}

function meteredKv(kv: KVNamespace, usage: Usage, faults: Faults): KVNamespace {
  const wrapped = {
    get: (key: string | string[], options?: unknown) => {
      if (Array.isArray(key) && key.length > 100) throw new LimitExceeded("kvOperations", key.length, "bulk get");
      return kvOperation(usage, () => (kv.get as (k: unknown, o?: unknown) => Promise<unknown>)(key, options));
    },
    getWithMetadata: (key: string, options?: unknown) =>
      kvOperation(usage, () => (kv.getWithMetadata as (k: string, o?: unknown) => Promise<unknown>)(key, options)),
    put: (key: string, value: string, options?: KVNamespacePutOptions) =>
      kvOperation(usage, async () => {
        if (faults.failPut?.(key)) throw new Error("KV PUT failed (injected)");
        return kv.put(key, value, options);
      }),
    delete: (key: string) => kvOperation(usage, () => kv.delete(key)),
    list: (options?: KVNamespaceListOptions) => kvOperation(usage, () => kv.list(options)),
  };
  return wrapped as unknown as KVNamespace;
}

function meteredBucket(bucket: R2Bucket, usage: Usage): R2Bucket {
  return new Proxy(bucket, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        connection(usage, async () => (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}

function meteredQueue(usage: Usage, outbox: Outboxed[]): Queue {
  const sendBatch = async (messages: Iterable<MessageSendRequest>) =>
    connection(usage, async () => {
      const list = [...messages];
      const sizes = list.map((m) => new TextEncoder().encode(JSON.stringify(m.body)).byteLength);
      usage.batchMessages = Math.max(usage.batchMessages, list.length);
      const bytes = sizes.reduce((a, b) => a + b, 0);
      usage.batchBytes = Math.max(usage.batchBytes, bytes);
      check(usage, "batchMessages", list.length);
      check(usage, "batchBytes", bytes);
      for (const size of sizes) check(usage, "messageBytes", size);
      outbox.push(...list.map((m) => ({ body: m.body })));
      return { metadata: { metrics: { backlogCount: outbox.length, backlogBytes: 0 } } };
    });
  return {
    sendBatch,
    send: (body: unknown) => sendBatch([{ body }]),
    metrics: async () => ({ backlogCount: outbox.length, backlogBytes: 0 }),
  } as unknown as Queue;
}

export function createHarness(base: Env = env): Harness {
  const harness: Harness = {
    outbox: [],
    usages: [],
    faults: {},
    meteredEnv(usage) {
      return {
        ...base,
        TENANTS: meteredKv(base.TENANTS, usage, harness.faults),
        EXPORTS: meteredBucket(base.EXPORTS, usage),
        FLEET_QUEUE: meteredQueue(usage, harness.outbox),
      };
    },
  };
  return harness;
}

/**
 * Runs one invocation (`run` gets the metered env and an execution context), with the global
 * `fetch` metered for its duration; waits for its `waitUntil` work too. Invocations must not
 * overlap (the global `fetch` is swapped for the one running).
 */
export async function invoke<T>(
  harness: Harness,
  name: string,
  run: (env: Env, ctx: ExecutionContext) => Promise<T>,
): Promise<T> {
  const usage = newUsage(name);
  harness.usages.push(usage);
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
    connection(usage, () => realFetch(input, init))) as typeof fetch;
  try {
    const ctx = createExecutionContext();
    const result = await run(harness.meteredEnv(usage), ctx);
    await waitOnExecutionContext(ctx);
    return result;
  } finally {
    globalThis.fetch = realFetch;
  }
}

/** One cron tick of the Worker, metered (the same `scheduledTime` twice: a cron delivered twice). */
export function cronTick(harness: Harness, cron = "*/15 * * * *", scheduledTime = Date.now()): Promise<void> {
  return invoke(harness, `scheduled ${cron}`, (metered, ctx) =>
    worker.scheduled({ cron, scheduledTime, noRetry() {} } as ScheduledController, metered, ctx),
  );
}

/**
 * Hands the outbox to the Worker's `queue()` in batches of `batchSize` (wrangler.toml's
 * max_batch_size), each a metered invocation, until it is empty or `maxBatches` ran; messages the
 * handler retries go back to the outbox. `only` leaves the other messages in the outbox. Returns
 * how many batches ran.
 */
export async function drainQueue(
  harness: Harness,
  options: { batchSize?: number; maxBatches?: number; only?: (body: unknown) => boolean } = {},
) {
  const size = options.batchSize ?? 10;
  const only = options.only ?? (() => true);
  let batches = 0;
  for (;;) {
    const ready = harness.outbox.filter((m) => only(m.body));
    if (ready.length === 0 || batches >= (options.maxBatches ?? 10_000)) break;
    const taken = ready.slice(0, size);
    for (const m of taken) harness.outbox.splice(harness.outbox.indexOf(m), 1);
    batches += 1;
    const messages = taken.map((m, i) => ({
      id: `b${batches}m${i}`,
      timestamp: new Date(),
      attempts: 1,
      body: m.body,
    }));
    const result = await invoke(harness, `queue #${batches}`, async (metered, ctx) => {
      const batch = createMessageBatch("tenantry-fleet", messages);
      await worker.queue(batch, metered, ctx);
      return getQueueResult(batch, ctx);
    });
    const retried = new Set(result.retryMessages.map((m) => m.msgId));
    if (result.retryBatch.retry) for (const m of messages) retried.add(m.id);
    for (const m of messages) if (retried.has(m.id)) harness.outbox.push({ body: m.body });
  }
  return batches;
}

/** The largest use of each limit over the invocations so far. */
export function peak(harness: Harness) {
  const max = (pick: (u: Usage) => number) => Math.max(0, ...harness.usages.map(pick));
  return {
    invocations: harness.usages.length,
    kvOperations: max((u) => u.kvOperations),
    subrequests: max((u) => u.subrequests),
    connections: max((u) => u.connections),
    batchMessages: max((u) => u.batchMessages),
  };
}
