/**
 * Cloudflare Queues in one process, for benches that run the project's own producer and consumer
 * code: messages sent with `sendBatch` are delivered to a consumer handler in batches of up to
 * `maxBatchSize` (wrangler.toml's settings by default), once a batch is full or its oldest message has waited `maxBatchTimeoutMs`, to at
 * most `maxConcurrency` consumer invocations at once (the platform's ceiling is 250). A message
 * neither acked nor retried is acked when the handler returns, and retried when it throws; a retry
 * comes back after its delay, up to `maxRetries`, then it is dropped as dead-lettered. Sends past
 * the queue's 5,000 messages per second wait for the next second. Each consumer invocation is an
 * `Invocation` (invocation.ts) with its own counters.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { projectRoot } from "../src/cli/project-config.ts";
import { Invocation, runInvocation } from "./invocation.ts";

export interface ConsumerSettings {
  readonly maxBatchSize: number;
  readonly maxBatchTimeoutMs: number;
  readonly maxConcurrency: number;
  readonly maxRetries: number;
}

/** The platform's defaults for what a consumer leaves unset (max_concurrency unset: up to 250). */
const PLATFORM_DEFAULTS: ConsumerSettings = {
  maxBatchSize: 10,
  maxBatchTimeoutMs: 5_000,
  maxConcurrency: 250,
  maxRetries: 3,
};

/** The fleet queue's consumer as wrangler.toml configures it (top-level environment). */
export function projectConsumer(queue = "tenantry-fleet"): ConsumerSettings {
  const config = parse(readFileSync(join(projectRoot, "wrangler.toml"), "utf8")) as {
    queues?: { consumers?: Record<string, unknown>[] };
  };
  const consumer = config.queues?.consumers?.find((c) => c.queue === queue);
  if (!consumer) throw new Error(`wrangler.toml has no consumer for ${queue}`);
  const number = (key: string) => (typeof consumer[key] === "number" ? (consumer[key] as number) : undefined);
  const timeout = number("max_batch_timeout");
  return {
    maxBatchSize: number("max_batch_size") ?? PLATFORM_DEFAULTS.maxBatchSize,
    maxBatchTimeoutMs: timeout === undefined ? PLATFORM_DEFAULTS.maxBatchTimeoutMs : timeout * 1_000,
    maxConcurrency: number("max_concurrency") ?? PLATFORM_DEFAULTS.maxConcurrency,
    maxRetries: number("max_retries") ?? PLATFORM_DEFAULTS.maxRetries,
  };
}

/** Messages per second one queue accepts. */
export const QUEUE_MESSAGES_PER_SECOND = 5_000;

interface Pending {
  readonly id: string;
  readonly body: unknown;
  readonly sentAt: number;
  readyAt: number;
  attempts: number;
}

export interface QueueMessage {
  readonly id: string;
  readonly timestamp: Date;
  readonly body: unknown;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

export interface QueueBatch {
  readonly queue: string;
  readonly messages: readonly QueueMessage[];
  ackAll(): void;
  retryAll(options?: { delaySeconds?: number }): void;
}

export type ConsumerHandler = (batch: QueueBatch, invocation: Invocation) => Promise<void>;

export class QueueModel {
  private readonly buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private windowStart = 0;
  private windowCount = 0;
  private nextId = 0;
  running = 0;
  peakRunning = 0;
  sent = 0;
  acked = 0;
  retried = 0;
  dead = 0;
  /** Most messages sent within one second. */
  peakPerSecond = 0;
  /** Times a send waited for the queue's per-second limit. */
  throttled = 0;
  readonly invocations: Invocation[] = [];

  constructor(
    readonly name: string,
    private readonly settings: ConsumerSettings,
    private readonly handler: ConsumerHandler,
  ) {}

  /** The producer side: what `env.QUEUE.sendBatch` does with the message bodies. */
  async send(bodies: readonly unknown[]): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (now - this.windowStart >= 1_000) {
        this.windowStart = now;
        this.windowCount = 0;
      }
      if (this.windowCount + bodies.length <= QUEUE_MESSAGES_PER_SECOND) break;
      this.throttled += 1;
      await new Promise((resolve) => setTimeout(resolve, 1_000 - (now - this.windowStart) + 1));
    }
    this.windowCount += bodies.length;
    this.peakPerSecond = Math.max(this.peakPerSecond, this.windowCount);
    const now = performance.now();
    for (const body of bodies) {
      this.nextId += 1;
      this.buffer.push({ id: `m${this.nextId}`, body, sentAt: now, readyAt: now, attempts: 1 });
    }
    this.sent += bodies.length;
    this.pump();
  }

  /** Resolves when no message is waiting and no consumer invocation is running. */
  idle(): Promise<void> {
    if (this.buffer.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const { maxBatchSize, maxBatchTimeoutMs, maxConcurrency } = this.settings;
    for (;;) {
      const now = performance.now();
      const ready = this.buffer.filter((m) => m.readyAt <= now);
      if (ready.length === 0 || this.running >= maxConcurrency) break;
      const oldest = Math.min(...ready.map((m) => m.readyAt));
      if (ready.length < maxBatchSize && now - oldest < maxBatchTimeoutMs) break;
      const batch = ready.slice(0, maxBatchSize);
      for (const message of batch) this.buffer.splice(this.buffer.indexOf(message), 1);
      void this.deliver(batch);
    }
    this.armTimer();
    if (this.buffer.length === 0 && this.running === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Wakes the pump when the next message becomes deliverable (batch timeout or retry delay). */
  private armTimer(): void {
    if (this.buffer.length === 0 || this.running >= this.settings.maxConcurrency) return;
    const now = performance.now();
    const next = Math.min(
      ...this.buffer.map((m) => (m.readyAt <= now ? m.readyAt + this.settings.maxBatchTimeoutMs : m.readyAt)),
    );
    this.timer = setTimeout(() => this.pump(), Math.max(1, next - now));
  }

  private async deliver(batch: Pending[]): Promise<void> {
    this.running += 1;
    this.peakRunning = Math.max(this.peakRunning, this.running);
    const invocation = new Invocation(`${this.name} consumer`);
    this.invocations.push(invocation);
    const settled = new Map<Pending, { retry: boolean; delaySeconds: number }>();
    const settle = (m: Pending, retry: boolean, delaySeconds = 0) => {
      if (!settled.has(m)) settled.set(m, { retry, delaySeconds });
    };
    const messages: QueueMessage[] = batch.map((m) => ({
      id: m.id,
      timestamp: new Date(),
      body: m.body,
      attempts: m.attempts,
      ack: () => settle(m, false),
      retry: (options) => settle(m, true, options?.delaySeconds ?? 0),
    }));
    let threw = false;
    try {
      await runInvocation(invocation, () =>
        this.handler(
          {
            queue: this.name,
            messages,
            ackAll: () => {
              for (const m of batch) settle(m, false);
            },
            retryAll: (options) => {
              for (const m of batch) settle(m, true, options?.delaySeconds ?? 0);
            },
          },
          invocation,
        ),
      );
    } catch {
      threw = true;
    }
    for (const m of batch) {
      const outcome = settled.get(m) ?? { retry: threw, delaySeconds: 0 };
      if (!outcome.retry) {
        this.acked += 1;
      } else if (m.attempts > this.settings.maxRetries) {
        this.dead += 1;
      } else {
        this.retried += 1;
        m.attempts += 1;
        m.readyAt = performance.now() + outcome.delaySeconds * 1_000;
        this.buffer.push(m);
      }
    }
    this.running -= 1;
    this.pump();
  }
}
