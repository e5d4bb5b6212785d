/**
 * Drives the project's own fleet code in Node, as the platform would run it: a control database
 * with the tenants registered, `startRun` inside one admin-API invocation (it dispatches the first
 * messages), then the Worker's `queue()` handler (`handleFleetBatch`) for every batch the queue
 * model delivers; each finished tenant dispatches the next ones, as in production. Every
 * invocation gets an env of its own whose KV and Queue bindings, and whose HTTP queries, count
 * against its limits (invocation.ts). Tenant connection strings are encrypted with the project's
 * key ring, as onboarding stores them.
 */

import { eq } from "drizzle-orm";
import type { FleetDeps } from "../src/control/fleet/dispatch.ts";
import { dispatch } from "../src/control/fleet/dispatch.ts";
import { type RunProgress, runProgress, startRun } from "../src/control/fleet/runs.ts";
import { migrationRuns, runTenants, tenants as tenantsTable } from "../src/control/schema.ts";
import { controlDb } from "../src/control/tenants/deps.ts";
import { migrationAad, ring } from "../src/control/tenants/secrets.ts";
import { encryptSecret, generateKey, tenantAad } from "../src/shared/crypto/secrets.ts";
import { countingKv, countingProducer, Invocation, type KvLike, runInvocation } from "./invocation.ts";
import { type ConsumerSettings, projectConsumer, type QueueBatch, QueueModel } from "./queue-model.ts";

/** What bench code needs of the Worker's env, context and batch (their types live in the Worker's program). */
type WorkerEnv = Record<string, unknown>;
type FleetDepsFrom = (env: WorkerEnv, actor: string, log: { log(...args: unknown[]): void }) => FleetDeps;
type HandleFleetBatch = (batch: QueueBatch, env: WorkerEnv, ctx: unknown) => Promise<void>;
type HandleScheduled = (
  controller: { cron: string; scheduledTime: number; noRetry(): void },
  env: WorkerEnv,
  ctx: unknown,
) => Promise<void>;
interface WorkerFleet {
  readonly fleetDepsFrom: FleetDepsFrom;
  readonly handleFleetBatch: HandleFleetBatch;
  readonly handleScheduled: HandleScheduled;
  readonly NIGHTLY_EXPORT_CRON: string;
}

/**
 * The Worker's own queue handler and deps builder (src/worker/fleet/handlers.ts). Loaded by a
 * computed path: it type-checks against the Workers types (src/worker/tsconfig.json), not this
 * Node program's, and runs in Node unchanged (nothing in it needs a Workers global at run time).
 */
async function workerFleet(): Promise<WorkerFleet> {
  const path = ["..", "src", "worker", "fleet", "handlers.ts"].join("/");
  return (await import(path)) as WorkerFleet;
}

/** A silent logger (the Worker's logger at level error would print retries; they are counted instead). */
const quiet = { log() {} };

export interface FleetSetup {
  readonly controlUrl: string;
  /** The gateway's /sql URL (`NEON_FETCH_ENDPOINT`). */
  readonly gatewayUrl: string;
  /** `DB_ENCRYPTION_KEYS`. */
  readonly encryptionKeys: string;
  readonly kv: KvLike;
}

export const newKeyRing = () => `bench:${generateKey()}`;

/** A tenant to register: its id and slug, and its database's connection string. */
export interface BenchTenant {
  readonly id: string;
  readonly slug: string;
  readonly url: string;
  /** The schema version it is at. */
  readonly version: string | null;
}

/** Registers `list` as active tenants (rows as onboarding leaves them), 500 per statement. */
export async function registerTenants(setup: FleetSetup, list: readonly BenchTenant[]): Promise<void> {
  const db = controlDb(setup.controlUrl);
  const keys = ring(setup.encryptionKeys);
  for (let start = 0; start < list.length; start += 500) {
    const rows = await Promise.all(
      list.slice(start, start + 500).map(async (t) => ({
        id: t.id,
        slug: t.slug,
        status: "active" as const,
        region: "local",
        provisioner: "url" as const,
        schemaVersion: t.version,
        dbSecret: await encryptSecret(keys, t.url, tenantAad(t.id)),
        migrationSecret: await encryptSecret(keys, t.url, migrationAad(t.id)),
      })),
    );
    await db.insert(tenantsTable).values(rows);
  }
}

/** The Worker env one invocation sees: counted KV and Queue bindings over shared stores. */
export function invocationEnv(setup: FleetSetup, queue: QueueModel, invocation: Invocation): WorkerEnv {
  return {
    CONTROL_DATABASE_URL: setup.controlUrl,
    NEON_FETCH_ENDPOINT: setup.gatewayUrl,
    DB_ENCRYPTION_KEYS: setup.encryptionKeys,
    ADMIN_HOST: "admin.localhost",
    LOG_LEVEL: "error",
    TENANTS: countingKv(setup.kv, invocation),
    FLEET_QUEUE: countingProducer((bodies) => queue.send(bodies), invocation),
  };
}

export interface FleetRollout {
  readonly wallMs: number;
  readonly progress: RunProgress;
  readonly queue: QueueModel;
  /** The admin-API invocation that started the run (and dispatched its first messages). */
  readonly starter: Invocation;
  /** Per tenant, ms from the consumer's claim to its recorded outcome (run_tenants.duration_ms). */
  readonly durations: number[];
  /** Cron dispatches the run needed after the consumers went quiet (0: the consumers finished it). */
  readonly cronDispatches: number;
}

const context = { waitUntil() {}, passThroughOnException() {}, props: {} };

/** One rollout of the bundle's latest migration to every registered tenant, `concurrency` at once. */
export async function rolloutThroughQueue(
  setup: FleetSetup,
  concurrency: number,
  settings: ConsumerSettings = projectConsumer(),
): Promise<FleetRollout> {
  const { fleetDepsFrom, handleFleetBatch } = await workerFleet();
  const queue: QueueModel = new QueueModel("tenantry-fleet", settings, (batch, invocation) =>
    handleFleetBatch(batch, invocationEnv(setup, queue, invocation), context),
  );
  const log = quiet;
  const starter = new Invocation("admin API");
  const started = performance.now();
  const begun = await runInvocation(starter, () =>
    startRun(fleetDepsFrom(invocationEnv(setup, queue, starter), "bench", log), {
      concurrency,
      maxFailures: 1_000_000,
    }),
  );
  await queue.idle();
  const wallMs = performance.now() - started;
  const deps = fleetDepsFrom(invocationEnv(setup, queue, new Invocation("report")), "bench", log);
  // A run the consumers left running (every dispatch that would move it on failed) waits for the
  // cron, every 15 minutes at the platform: here its dispatch runs at once, and is counted.
  let cronDispatches = 0;
  for (; cronDispatches < 3; cronDispatches += 1) {
    const [run] = await deps.db
      .select({ status: migrationRuns.status })
      .from(migrationRuns)
      .where(eq(migrationRuns.id, begun.id));
    if (run?.status !== "running") break;
    const cron = new Invocation("cron");
    await runInvocation(cron, () => dispatch(fleetDepsFrom(invocationEnv(setup, queue, cron), "system:cron", log)));
    await queue.idle();
  }
  const progress = await runProgress(deps, begun.id);
  const rows = await controlDb(setup.controlUrl)
    .select({ durationMs: runTenants.durationMs })
    .from(runTenants)
    .where(eq(runTenants.runId, begun.id));
  const durations = rows.flatMap((r) => (r.durationMs === null ? [] : [r.durationMs]));
  return { wallMs, progress, queue, starter, durations, cronDispatches };
}

export interface Dispatched {
  /** From the cron to the last step of the pass (the queue quiet again). */
  readonly wallMs: number;
  /** The cron's invocation, then every consumer invocation that ran a step of the pass. */
  readonly invocations: Invocation[];
}

const isExport = (body: unknown) => (body as { kind?: unknown } | null)?.kind === "export";

/**
 * The nightly export pass, as the platform runs it: the Worker's `scheduled()` handler with the
 * nightly cron expression, then every step message it (and each step) sends, through the Worker's
 * own queue handler. The export messages themselves are acknowledged without running the export
 * (the export bench measures one).
 */
export async function nightlyExportDispatch(
  setup: FleetSetup,
): Promise<Dispatched & { queue: QueueModel; exports: number }> {
  const { handleScheduled, handleFleetBatch, NIGHTLY_EXPORT_CRON } = await workerFleet();
  const steps: Invocation[] = [];
  let exports = 0;
  const queue: QueueModel = new QueueModel("tenantry-fleet", projectConsumer(), async (batch, invocation) => {
    const rest = batch.messages.filter((m) => !isExport(m.body));
    for (const m of batch.messages) {
      if (!isExport(m.body)) continue;
      exports += 1;
      m.ack();
    }
    if (rest.length === 0) return;
    steps.push(invocation);
    await handleFleetBatch({ ...batch, messages: rest }, invocationEnv(setup, queue, invocation), context);
  });
  const invocation = new Invocation("cron (nightly exports)");
  const env = { ...invocationEnv(setup, queue, invocation), EXPORTS: {} };
  const started = performance.now();
  await runInvocation(invocation, () =>
    handleScheduled({ cron: NIGHTLY_EXPORT_CRON, scheduledTime: Date.now(), noRetry() {} }, env, context),
  );
  await queue.idle();
  return { wallMs: performance.now() - started, invocations: [invocation, ...steps], queue, exports };
}
