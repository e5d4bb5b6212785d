/**
 * The bench's model of the platform (bench/invocation.ts, bench/queue-model.ts, bench/neon-like.ts):
 * the figures of the fleet and scale benches are only as good as these counts, so each limit is
 * shown to bind where the platform's does, and the queue to deliver, retry and dead-letter as
 * Cloudflare Queues do.
 */
import { describe, expect, it } from "vitest";
import {
  countingKv,
  countingProducer,
  Invocation,
  invocationFetch,
  type KvLike,
  LimitExceeded,
  runInvocation,
  WORKER_LIMITS,
} from "../../../bench/invocation.ts";
import { databaseOfStartup, NeonLikeProfile } from "../../../bench/neon-like.ts";
import { QueueModel } from "../../../bench/queue-model.ts";

const memory = (): KvLike => {
  const entries = new Map<string, string>();
  return {
    get: async (key) => entries.get(key) ?? null,
    put: async (key, value) => {
      entries.set(key, value);
    },
    delete: async (key) => {
      entries.delete(key);
    },
    list: async () => ({ keys: [...entries.keys()].map((name) => ({ name })), list_complete: true }),
  };
};

describe("one invocation's limits", () => {
  it("the 1,001st KV operation throws, and is recorded", async () => {
    const invocation = new Invocation("test");
    const kv = countingKv(memory(), invocation);
    for (let i = 0; i < WORKER_LIMITS.kvOperations; i += 1) await kv.get(`k${i}`);
    await expect(kv.put("one-more", "x")).rejects.toBeInstanceOf(LimitExceeded);
    expect(invocation.kvOperations).toBe(1_001);
    expect(invocation.refusals).toEqual(["KV operation 1001"]);
  });

  it("a seventh simultaneous call waits for one of the 6 connections", async () => {
    const invocation = new Invocation("test");
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = Array.from({ length: 10 }, () => invocation.connection(() => gate));
    await Promise.resolve();
    expect(invocation.open).toBe(6);
    release();
    await Promise.all(calls);
    expect(invocation.peakOpen).toBe(6);
    expect(invocation.connectionWaits).toBe(4);
    expect(invocation.open).toBe(0);
  });

  it("fetches inside runInvocation count as its subrequests; outside, as nobody's", async () => {
    const invocation = new Invocation("test");
    const counted = invocationFetch(async () => new Response("ok"));
    await runInvocation(invocation, async () => {
      await counted("http://example.invalid/");
      await Promise.all([counted("http://example.invalid/"), counted("http://example.invalid/")]);
    });
    await counted("http://example.invalid/");
    expect(invocation.subrequests).toBe(3);
  });

  it("sendBatch takes at most 100 messages and counts as one subrequest", async () => {
    const invocation = new Invocation("test");
    const received: unknown[] = [];
    const producer = countingProducer(async (bodies) => {
      received.push(...bodies);
    }, invocation);
    await producer.sendBatch(Array.from({ length: 100 }, (_, i) => ({ body: { i } })));
    await expect(producer.sendBatch(Array.from({ length: 101 }, (_, i) => ({ body: { i } })))).rejects.toThrow(
      /sendBatch of 101 messages/,
    );
    expect(received).toHaveLength(100);
    expect(invocation.subrequests).toBe(2);
  });
});

describe("the queue model", () => {
  const settings = { maxBatchSize: 4, maxBatchTimeoutMs: 0, maxConcurrency: 2, maxRetries: 2 };

  it("delivers in batches of at most maxBatchSize to at most maxConcurrency invocations", async () => {
    const seen: number[][] = [];
    let running = 0;
    let most = 0;
    const queue = new QueueModel("q", settings, async (batch) => {
      running += 1;
      most = Math.max(most, running);
      seen.push(batch.messages.map((m) => m.body as number));
      await new Promise((resolve) => setTimeout(resolve, 1));
      running -= 1;
    });
    await queue.send(Array.from({ length: 10 }, (_, i) => i));
    await queue.idle();
    expect(seen.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Math.max(...seen.map((b) => b.length))).toBe(4);
    expect(most).toBeLessThanOrEqual(2);
    expect(queue.peakRunning).toBe(most);
    expect(queue.acked).toBe(10);
    expect(queue.invocations).toHaveLength(seen.length);
  });

  it("retries the messages of a handler that throws, then dead-letters them after maxRetries", async () => {
    const attempts: number[] = [];
    const queue = new QueueModel("q", settings, async (batch) => {
      attempts.push(...batch.messages.map((m) => m.attempts));
      throw new Error("control plane down");
    });
    await queue.send(["only"]);
    await queue.idle();
    expect(attempts).toEqual([1, 2, 3]);
    expect(queue.retried).toBe(2);
    expect(queue.dead).toBe(1);
    expect(queue.acked).toBe(0);
  });

  it("an explicit retry is honoured even when the handler returns", async () => {
    let deliveries = 0;
    const queue = new QueueModel("q", settings, async (batch) => {
      deliveries += 1;
      for (const m of batch.messages) {
        if (m.attempts === 1) m.retry();
        else m.ack();
      }
    });
    await queue.send(["a", "b"]);
    await queue.idle();
    expect(deliveries).toBe(2);
    expect(queue.acked).toBe(2);
    expect(queue.retried).toBe(2);
  });
});

describe("the Neon-like profile", () => {
  it("wakes a suspended database once, however many queries wait for it", async () => {
    const profile = new NeonLikeProfile({ rttMs: 0, wakeMs: 1, idleMs: 60_000 });
    await Promise.all([profile.awake("a"), profile.awake("a"), profile.awake("b")]);
    await profile.awake("a");
    expect(profile.wakes).toBe(2);
    profile.suspendAll();
    await profile.awake("a");
    expect(profile.wakes).toBe(3);
  });

  it("reads the database from a Postgres StartupMessage", () => {
    const params = Buffer.from("user\0bench\0database\0fleet_200_base_00001\0\0");
    const header = Buffer.alloc(8);
    header.writeInt32BE(8 + params.length, 0);
    header.writeInt32BE(196_608, 4);
    expect(databaseOfStartup(Buffer.concat([header, params]))).toBe("fleet_200_base_00001");
    // An SSLRequest is not a StartupMessage.
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80_877_103, 4);
    expect(databaseOfStartup(ssl)).toBeUndefined();
  });
});
