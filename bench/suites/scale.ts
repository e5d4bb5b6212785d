/**
 * Scale: a rollout and a nightly export dispatch to 10,000 tenants (`--tenants=N`, `--quick` 500)
 * under the Neon-like profile (bench/neon-like.ts: `--rtt`, default 20 ms per request; `--wake`,
 * 400 ms on the first query to each suspended tenant database) and the platform's limits, with the
 * project's own code:
 *
 * - rollout: `startRun` in an admin-API invocation, then the Worker's `queue()` handler for every
 *   batch a model of Cloudflare Queues delivers (wrangler.toml's consumer; at most 250 consumer
 *   invocations at once; 5,000 messages/s per queue), run concurrency `--concurrency` (default
 *   250, the most a run allows). The control database is a real one (embedded Postgres, through the
 *   gateway, paying the round trip); the tenant databases are a model (bench/tenant-model.ts) that
 *   answers the migrator's requests after the profile's round trip and wake-up.
 * - nightly export dispatch: the Worker's `scheduled()` handler with the nightly cron, then each
 *   step of the pass it queues through the Worker's queue handler; the export messages are
 *   delivered and acknowledged (the exports themselves are the export bench's subject).
 *
 * Every invocation counts its KV operations, subrequests and open connections and is held to the
 * Workers limits (bench/invocation.ts); global fetch is counted by destination, so a call to the
 * Neon API (700 requests/minute per account) would show. The figures: wall time, peaks per
 * invocation, and how close each limit came to binding.
 *
 * Wall time: the simulation's own is this machine's (the control database, the gateway and the
 * Worker code share its cores, with whatever else runs), an upper bound. The prediction for the
 * platform takes the requests each tenant made here (consumer subrequests / tenants, its dispatch
 * share included), each costing one round trip, plus one wake-up per tenant, in rounds of as many
 * tenants at once as the run's concurrency and the consumers (max_concurrency × batch size) allow,
 * never faster than the queue's 5,000 messages/s; plus the start request's own round trips, and
 * 15 minutes for each cron dispatch the run needed after its consumers went quiet.
 */
import { neonConfig } from "@neondatabase/serverless";
import { ensureControlDatabase, memoryKv } from "../../src/dev/seed.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { migrations } from "../../src/generated/migrations.ts";
import {
  type FleetSetup,
  newKeyRing,
  nightlyExportDispatch,
  registerTenants,
  rolloutThroughQueue,
} from "../fleet-driver.ts";
import { type Invocation, invocationFetch, WORKER_LIMITS } from "../invocation.ts";
import { type BenchContext, flagValue, percentile, positiveIntFlag, type Suite, type SuiteResult } from "../lib.ts";
import { NEON_LIKE_DEFAULTS, NeonLikeProfile } from "../neon-like.ts";
import { projectConsumer, QUEUE_MESSAGES_PER_SECOND } from "../queue-model.ts";
import { TenantDatabaseModel } from "../tenant-model.ts";

const CONTROL_DATABASE = "scale_bench_control";
const MODEL_HOST = "tenant-model.invalid";
/** Neon API requests per minute per account. */
const NEON_API_PER_MINUTE = 700;
/** The longest a rollout to the whole fleet may take. */
const ROLLOUT_TARGET_MINUTES = 10;

function msFlag(ctx: BenchContext, name: string, fallback: number): number {
  const value = flagValue(ctx, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 10_000) throw new Error(`--${name} must be 0..10000 ms, got ${value}`);
  return n;
}

/** Counts every global fetch by destination host while `work` runs. */
async function countingFetches<T>(work: () => Promise<T>): Promise<{ value: T; byHost: Map<string, number> }> {
  const original = globalThis.fetch;
  const byHost = new Map<string, number>();
  globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    byHost.set(url.host, (byHost.get(url.host) ?? 0) + 1);
    return original(input, init);
  };
  try {
    return { value: await work(), byHost };
  } finally {
    globalThis.fetch = original;
  }
}

const peak = (list: readonly Invocation[], pick: (i: Invocation) => number) => Math.max(0, ...list.map(pick));

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const tenants = positiveIntFlag(ctx, "tenants") ?? (ctx.quick ? 500 : 10_000);
  const concurrency = positiveIntFlag(ctx, "concurrency") ?? 250;
  if (concurrency > 250) throw new Error("--concurrency above 250 is more than a run allows");
  const profile = new NeonLikeProfile({
    rttMs: msFlag(ctx, "rtt", NEON_LIKE_DEFAULTS.rttMs),
    wakeMs: msFlag(ctx, "wake", NEON_LIKE_DEFAULTS.wakeMs),
  });
  const n = tenants.toLocaleString("en-US");
  const label = `${n} tenants`;
  const model = new TenantDatabaseModel(MODEL_HOST, migrations);

  ctx.log("starting Postgres and the gateway");
  const stack = await startLocalStack({ gateway: { port: 0, maxTotal: 150, maxPerPool: 64, idleMs: 5_000 } });
  neonConfig.fetchEndpoint = stack.gateway.url;
  try {
    const controlUrl = await ensureControlDatabase(stack.postgres.url, CONTROL_DATABASE);
    const fleet: FleetSetup = {
      controlUrl,
      gatewayUrl: stack.gateway.url,
      encryptionKeys: newKeyRing(),
      kv: memoryKv(),
    };
    ctx.log(`registering ${n} tenants (model databases at ${migrations[0]?.name})`);
    const list = Array.from({ length: tenants }, (_, i) => {
      const id = `t_${String(i + 1).padStart(6, "0")}`;
      model.seed(id, 1);
      return { id, slug: `scale-${i + 1}`, url: model.url(id), version: migrations[0]?.name ?? null };
    });
    await registerTenants(fleet, list);

    profile.suspendAll();
    neonConfig.fetchFunction = invocationFetch(profile.fetchFunction(model.fetchFunction(fetch)));
    ctx.log(`rollout to ${n} tenants, concurrency ${concurrency}`);
    const { value: rollout, byHost: rolloutHosts } = await countingFetches(() =>
      rolloutThroughQueue(fleet, concurrency),
    );
    ctx.log(`rollout: ${rollout.progress.status} in ${(rollout.wallMs / 1000).toFixed(1)} s`);

    ctx.log("nightly export dispatch");
    const { value: nightly, byHost: nightlyHosts } = await countingFetches(() => nightlyExportDispatch(fleet));
    const exportQueue = nightly.queue;
    const exportMessages = nightly.exports;
    neonConfig.fetchFunction = undefined;

    const consumers = rollout.queue.invocations;
    const { counts } = rollout.progress;
    const all = [rollout.starter, ...consumers, ...nightly.invocations];
    const gatewayHost = new URL(stack.gateway.url).host;
    const otherRequests = [...rolloutHosts, ...nightlyHosts].filter(([host]) => host !== gatewayHost);
    const neonApiRequests = otherRequests.reduce((sum, [, count]) => sum + count, 0);
    const minutes = rollout.wallMs / 60_000;
    // The platform's pace: each tenant's requests one after another at the profile's round trip,
    // plus its wake-up, for as many tenants at once as the run and the consumers allow.
    const settings = projectConsumer();
    const perTenantRequests = consumers.reduce((sum, i) => sum + i.subrequests, 0) / Math.max(1, counts.done);
    const perTenantMs = perTenantRequests * profile.options.rttMs + profile.options.wakeMs;
    const atOnce = Math.min(concurrency, settings.maxConcurrency * Math.min(settings.maxBatchSize, 4));
    const predictedMs =
      rollout.cronDispatches * 15 * 60_000 +
      rollout.starter.subrequests * profile.options.rttMs +
      Math.max(Math.ceil(tenants / atOnce) * perTenantMs, (tenants / QUEUE_MESSAGES_PER_SECOND) * 1_000);
    const maxKv = peak(all, (i) => i.kvOperations);
    const maxSub = peak(all, (i) => i.subrequests);
    const waits = all.reduce((sum, i) => sum + i.connectionWaits, 0);
    // How close each limit came: 1 means it was reached (a connection wait means all 6 were open).
    const utilisation: Record<string, number> = {
      "KV operations per invocation (1,000)": maxKv / WORKER_LIMITS.kvOperations,
      "subrequests per invocation (10,000)": maxSub / WORKER_LIMITS.subrequests,
      "open connections per invocation (6)": waits > 0 ? 1 : peak(all, (i) => i.peakOpen) / WORKER_LIMITS.connections,
      "queue messages per second (5,000)":
        Math.max(rollout.queue.peakPerSecond, exportQueue.peakPerSecond) / QUEUE_MESSAGES_PER_SECOND,
      "consumer invocations at once (250)": rollout.queue.peakRunning / 250,
      "Neon API requests per minute (700)": neonApiRequests / Math.max(1, minutes) / NEON_API_PER_MINUTE,
    };
    const binding = Object.entries(utilisation).sort(([, a], [, b]) => b - a)[0];
    const round2 = (value: number) => Math.round(value * 100) / 100;
    const durations = rollout.durations;
    const derived: Record<string, number | string> = {
      profile: `Neon-like (${profile.options.rttMs} ms RTT, ${profile.options.wakeMs} ms wake-up)`,
      [`${label}: rollout predicted wall time at the platform (min)`]: round2(predictedMs / 60_000),
      [`${label}: rollout prediction under ${ROLLOUT_TARGET_MINUTES} minutes`]:
        predictedMs / 60_000 < ROLLOUT_TARGET_MINUTES ? "yes" : "no",
      [`${label}: rollout control and tenant requests per tenant (consumer subrequests / tenants)`]:
        round2(perTenantRequests),
      [`${label}: rollout per tenant at the platform (ms: requests × RTT + wake-up)`]: Math.round(perTenantMs),
      [`${label}: rollout tenants in progress at once at the platform`]: atOnce,
      [`${label}: rollout simulated wall time on this machine (min)`]: round2(minutes),
      [`${label}: rollout simulated tenants/s on this machine`]:
        Math.round((counts.done / rollout.wallMs) * 10_000) / 10,
      [`${label}: rollout run status`]: rollout.progress.status,
      [`${label}: rollout failed tenants`]: tenants - counts.done,
      [`${label}: tenant databases at the latest version (model ledgers)`]: model.atLatest(),
      [`${label}: rollout run concurrency`]: concurrency,
      [`${label}: rollout per tenant, claim to record, p50 / p99 (ms)`]: `${percentile(durations, 50)} / ${percentile(durations, 99)}`,
      [`${label}: rollout consumer invocations`]: consumers.length,
      [`${label}: rollout most consumer invocations at once`]: rollout.queue.peakRunning,
      [`${label}: rollout messages sent / redelivered / dead-lettered`]: `${rollout.queue.sent} / ${rollout.queue.retried} / ${rollout.queue.dead}`,
      [`${label}: rollout tenant database wake-ups`]: profile.wakes,
      [`${label}: rollout cron dispatches needed to finish (15 min each at the platform)`]: rollout.cronDispatches,
      [`${label}: rollout max KV operations per invocation`]: peak(
        [rollout.starter, ...consumers],
        (i) => i.kvOperations,
      ),
      [`${label}: rollout max subrequests per invocation`]: peak([rollout.starter, ...consumers], (i) => i.subrequests),
      [`${label}: rollout start (admin API) subrequests`]: rollout.starter.subrequests,
      [`${label}: nightly export dispatch wall time (s)`]: round2(nightly.wallMs / 1000),
      [`${label}: nightly export dispatch export messages sent`]: exportMessages,
      [`${label}: nightly export dispatch invocations (the cron, then queued steps)`]: nightly.invocations.length,
      [`${label}: nightly export dispatch max KV operations per invocation`]: peak(
        nightly.invocations,
        (i) => i.kvOperations,
      ),
      [`${label}: nightly export dispatch max subrequests per invocation`]: peak(
        nightly.invocations,
        (i) => i.subrequests,
      ),
      [`${label}: max KV operations per invocation`]: maxKv,
      [`${label}: max subrequests per invocation`]: maxSub,
      [`${label}: most open connections in one invocation`]: peak(all, (i) => i.peakOpen),
      [`${label}: calls that waited for a free connection (6 per invocation)`]: waits,
      [`${label}: invocations over a limit`]: all.filter((i) => i.refusals.length > 0).length,
      [`${label}: peak queue messages in one second`]: Math.max(rollout.queue.peakPerSecond, exportQueue.peakPerSecond),
      [`${label}: Neon API (and other non-SQL) requests`]: neonApiRequests,
      ...Object.fromEntries(Object.entries(utilisation).map(([name, u]) => [`${label}: use of ${name}`, round2(u)])),
      [`${label}: limit that binds first`]: binding ? `${binding[0]} at ${round2(binding[1])}` : "none",
    };
    const firstRefusal = all.find((i) => i.refusals.length > 0);
    if (firstRefusal) ctx.log(`over a limit: ${firstRefusal.kind}: ${firstRefusal.refusals[0]}`);
    if (rollout.progress.failures[0]) ctx.log(`first failure: ${rollout.progress.failures[0].error}`);
    return { measurements: {}, derived };
  } finally {
    neonConfig.fetchFunction = undefined;
    ctx.log("stopping the stack");
    await stack.stop();
  }
}

const suite: Suite = {
  name: "scale",
  description: "a rollout and a nightly export dispatch to 10,000 tenants under Neon-like latency and Workers limits",
  run,
};

export default suite;
