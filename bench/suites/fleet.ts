/**
 * Fleet rollout at Neon-like latency: one schema change (the 3 migrations after 0000_store) rolled
 * out to N tenant databases (`--tenants=200,1000` by default, `--quick` 20) on one embedded
 * Postgres, by two paths, each over its own fresh set of N databases brought to 0000_store first:
 *
 * - project path: the real fleet code. `startRun` (runs.ts) in an admin-API invocation, the Worker's
 *   own `queue()` handler (`handleFleetBatch`) for every batch a model of Cloudflare Queues delivers
 *   (wrangler.toml's consumer settings: batches of 10, 1 s batch timeout, up to 250 invocations),
 *   the consumer claiming, migrating (`migrateDatabase` over the SQL-over-HTTP gateway), recording
 *   and dispatching the next tenants through the control database, run `--concurrency` (default
 *   16 and 64) tenants in flight. Each invocation's KV operations, subrequests and open
 *   connections are counted and held to the Workers limits (bench/invocation.ts).
 * - baseline: a serial loop of drizzle-orm's own `migrate()` over node-postgres, one `pg.Client`
 *   per tenant, with the real migrations/ folder (how Neon's database-per-tenant reference repo rolls
 *   a change out).
 *
 * Both pay the Neon-like profile (bench/neon-like.ts): a round trip per request (`--rtt`, default
 * 20 ms; the control database too) and a wake-up of every tenant database on its first query
 * (`--wake`, default 400 ms; all of them start suspended). Afterwards every tenant database is
 * checked for the three changes and its ledger, and the control plane for each tenant's recorded
 * version, then dropped. The databases live in a throwaway cluster deleted when the stack stops.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { projectRoot } from "../../src/cli/project-config.ts";
import { ensureControlDatabase, memoryKv } from "../../src/dev/seed.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { migrateDatabase } from "../../src/shared/migrations.ts";
import {
  type FleetRollout,
  type FleetSetup,
  newKeyRing,
  registerTenants,
  rolloutThroughQueue,
} from "../fleet-driver.ts";
import { invocationFetch } from "../invocation.ts";
import {
  type BenchContext,
  flagValue,
  type Measurement,
  MS_PER_TICK,
  machineCpu,
  percentile,
  ratio,
  type Suite,
  type SuiteResult,
} from "../lib.ts";
import { NEON_LIKE_DEFAULTS, NeonLikeProfile } from "../neon-like.ts";

const MIGRATIONS_DIR = join(projectRoot, "migrations");
const DEFAULT_TENANTS = [200, 1_000];
/** Tenants in flight on the project path (the run's `concurrency`). */
const DEFAULT_CONCURRENCY = [16, 64];
/** Databases created and prepared at once (setup, untimed). */
const SETUP_CONCURRENCY = 8;
const CONTROL_DATABASE = "fleet_bench_control";

/** A comma-separated list of positive whole numbers (`1_000` allowed). */
function listFlag(ctx: BenchContext, name: string, defaults: readonly number[]): number[] {
  const value = flagValue(ctx, name);
  if (value === undefined) return [...defaults];
  const list = value.split(",").map((part) => Number(part.trim().replaceAll("_", "")));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`--${name} must be a comma-separated list of positive whole numbers, got ${value}`);
  }
  return [...new Set(list)];
}

/** A non-negative number of ms flag (0..10,000), or `fallback`. */
function msFlag(ctx: BenchContext, name: string, fallback: number): number {
  const value = flagValue(ctx, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 10_000) throw new Error(`--${name} must be 0..10000 ms, got ${value}`);
  return n;
}

/** Drops `databases` (SETUP_CONCURRENCY at once) and takes them off `created`; `tolerant` ignores failures. */
async function dropDatabases(admin: pg.Pool, databases: readonly string[], created: string[], tolerant = false) {
  await pool(databases, SETUP_CONCURRENCY, async (database) => {
    const dropped = admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await (tolerant ? dropped.catch(() => {}) : dropped);
    const at = created.indexOf(database);
    if (at >= 0) created.splice(at, 1);
  });
}

/** Runs `task` over `items`, `concurrency` at once. */
async function pool<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

/** A folder drizzle's migrator reads: the first journal entry and its SQL file only. */
async function firstMigrationFolder(): Promise<string> {
  const journal = JSON.parse(await readFile(join(MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as {
    entries: { tag: string }[];
  };
  const first = journal.entries[0];
  if (!first || first.tag !== migrations[0]?.name) {
    throw new Error("migrations/meta/_journal.json and the bundle disagree on the first migration");
  }
  const dir = await mkdtemp(join(tmpdir(), "tenantry-bench-fleet-"));
  await mkdir(join(dir, "meta"));
  await copyFile(join(MIGRATIONS_DIR, `${first.tag}.sql`), join(dir, `${first.tag}.sql`));
  await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify({ ...journal, entries: [first] }, null, 2));
  return dir;
}

async function drizzleMigrate(url: string, migrationsFolder: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migrate(drizzle({ client }), { migrationsFolder });
  } finally {
    await client.end();
  }
}

/** CPU of this process (the migrating client and the in-process gateway), and of the machine. */
function cpuSnapshot() {
  const own = process.cpuUsage();
  return { nodeMs: (own.user + own.system) / 1000, machine: machineCpu() };
}

interface CpuFigures {
  /** This process (migrating client and the gateway), ms per tenant. */
  readonly nodeMsPerTenant: number;
  /** Every other process (Postgres, almost all of it), ms per tenant. */
  readonly otherMsPerTenant: number | undefined;
  /** Share of all cores busy, every process on the machine included (0–1). */
  readonly machineBusy: number | undefined;
}

function cpuBetween(
  before: ReturnType<typeof cpuSnapshot>,
  after: ReturnType<typeof cpuSnapshot>,
  tenants: number,
): CpuFigures {
  const { machine: m0 } = before;
  const { machine: m1 } = after;
  const nodeMsPerTenant = (after.nodeMs - before.nodeMs) / tenants;
  const measured = m0 && m1 && m1.total > m0.total;
  return {
    nodeMsPerTenant,
    otherMsPerTenant: measured
      ? Math.max(0, ((m1.busy - m0.busy) * MS_PER_TICK) / tenants - nodeMsPerTenant)
      : undefined,
    machineBusy: measured ? (m1.busy - m0.busy) / (m1.total - m0.total) : undefined,
  };
}

interface Timed {
  readonly measurement: Measurement;
  readonly wallMs: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly cpu: CpuFigures;
}

/** Times `work` over every tenant, `concurrency` at once; a failing tenant is counted, not fatal. */
async function timeRollout(
  urls: readonly string[],
  concurrency: number,
  work: (url: string) => Promise<unknown>,
): Promise<Timed> {
  const times: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const cpuBefore = cpuSnapshot();
  const started = performance.now();
  await pool(urls, concurrency, async (url) => {
    const t0 = performance.now();
    try {
      await work(url);
      times.push(performance.now() - t0);
    } catch (error) {
      failed += 1;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  });
  const wallMs = performance.now() - started;
  const cpu = cpuBetween(cpuBefore, cpuSnapshot(), urls.length);
  const round = (value: number) => Math.round(value * 1000) / 1000;
  const sum = times.reduce((a, b) => a + b, 0);
  return {
    wallMs,
    failed,
    firstError,
    cpu,
    measurement: {
      iterations: times.length,
      concurrency,
      p50: round(percentile(times, 50)),
      p99: round(percentile(times, 99)),
      mean: round(sum / Math.max(1, times.length)),
      min: round(times.length ? Math.min(...times) : Number.NaN),
      max: round(times.length ? Math.max(...times) : Number.NaN),
      opsPerSec: Math.round((times.length / wallMs) * 1000),
    },
  };
}

/** The three changes after 0000_store, and the ledger rows, as one query. */
const VERIFY_SQL = (ledger: string) => `SELECT
  (SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'image_url')
  + (SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders' AND column_name = 'note')
  + (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'order_items_product_idx') AS changes,
  (SELECT count(*) FROM ${ledger}) AS ledger`;

interface Bench {
  readonly ctx: BenchContext;
  readonly stack: Awaited<ReturnType<typeof startLocalStack>>;
  readonly admin: pg.Pool;
  readonly firstOnly: string;
  /** Every database created, for the cleanup. */
  readonly created: string[];
  readonly profile: NeonLikeProfile;
  readonly fleet: FleetSetup;
}

/**
 * Creates `names`, each a copy of a template database at 0000_store (made once per tool, by the
 * tool that will migrate the copies later, so both paths start from the same schema).
 */
async function createSet(bench: Bench, names: readonly string[], tool: "project" | "drizzle"): Promise<void> {
  const { admin, stack, created, firstOnly } = bench;
  const started = performance.now();
  const template = `fleet_template_${tool}`;
  if (!created.includes(template)) {
    await admin.query(`CREATE DATABASE ${template}`);
    created.push(template);
    const url = stack.postgres.urlFor(template);
    if (tool === "project") await migrateDatabase(neon(url), migrations.slice(0, 1));
    else await drizzleMigrate(url, firstOnly);
    // No connection may stay open on a template while it is copied.
    const deadline = Date.now() + 10_000;
    while (stack.gateway.stats().open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
  await pool(names, SETUP_CONCURRENCY, async (database) => {
    await admin.query(`CREATE DATABASE ${database} TEMPLATE ${template}`);
    created.push(database);
  });
  bench.ctx.log(
    `created ${names.length} databases at ${migrations[0]?.name} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

/** Databases of `names` without all three changes and a full ledger. */
async function verifySet(bench: Bench, names: readonly string[], ledger: string): Promise<string[]> {
  const wrong: string[] = [];
  await pool(names, SETUP_CONCURRENCY, async (database) => {
    const client = new pg.Client({ connectionString: bench.stack.postgres.urlFor(database) });
    await client.connect();
    try {
      const { rows } = await client.query<{ changes: string; ledger: string }>(VERIFY_SQL(ledger));
      const row = rows[0];
      if (Number(row?.changes) !== migrations.length - 1 || Number(row?.ledger) !== migrations.length) {
        wrong.push(`${database} (changes ${row?.changes}, ledger rows ${row?.ledger})`);
      }
    } catch (error) {
      wrong.push(`${database} (${error instanceof Error ? error.message : String(error)})`);
    } finally {
      await client.end();
    }
  });
  if (wrong.length > 0) bench.ctx.log(`NOT migrated: ${wrong.slice(0, 5).join(", ")}${wrong.length > 5 ? " …" : ""}`);
  return wrong;
}

/** No warm gateway connection left from the setup, dirty pages written out, every database asleep. */
async function settle(bench: Bench): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (bench.stack.gateway.stats().open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await bench.admin.query("CHECKPOINT");
  bench.profile.suspendAll();
}

interface BaselineResult {
  readonly timed: Timed;
  readonly wrong: number;
}

/** The serial drizzle migrate() loop over `tenants` fresh databases, through the profile's relay. */
async function baseline(bench: Bench, tenants: number): Promise<BaselineResult> {
  const { stack, ctx, profile } = bench;
  const names = Array.from({ length: tenants }, (_, i) => `fleet_${tenants}_base_${String(i + 1).padStart(5, "0")}`);
  await createSet(bench, names, "drizzle");
  await settle(bench);
  const relay = await profile.startRelay(stack.postgres.host, stack.postgres.port);
  try {
    const urls = names.map((database) => {
      const url = new URL(stack.postgres.urlFor(database));
      url.hostname = "127.0.0.1";
      url.port = String(relay.port);
      return url.toString();
    });
    ctx.log(`[${tenants} tenants] baseline: drizzle migrate() over pg, one tenant after another`);
    const timed = await timeRollout(urls, 1, (url) => drizzleMigrate(url, MIGRATIONS_DIR));
    if (timed.firstError) ctx.log(`baseline, first error: ${timed.firstError}`);
    const wrong = await verifySet(bench, names, "drizzle.__drizzle_migrations");
    await dropDatabases(bench.admin, names, bench.created);
    return { timed, wrong: wrong.length };
  } finally {
    await relay.close();
  }
}

interface ProjectResult {
  readonly rollout: FleetRollout;
  readonly cpu: CpuFigures;
  readonly wrong: number;
  /** Tenants whose version in the control plane is not the bundle's latest. */
  readonly behind: number;
}

/** The project's fleet code over `tenants` fresh databases, `concurrency` in flight. */
async function project(bench: Bench, tenants: number, concurrency: number): Promise<ProjectResult> {
  const { stack, ctx, profile, fleet } = bench;
  const names = Array.from(
    { length: tenants },
    (_, i) => `fleet_${tenants}_c${concurrency}_${String(i + 1).padStart(5, "0")}`,
  );
  await createSet(bench, names, "project");
  const control = new pg.Client({ connectionString: fleet.controlUrl });
  await control.connect();
  try {
    await control.query("TRUNCATE tenants, migration_runs, run_tenants, audit_log CASCADE");
    await registerTenants(
      fleet,
      names.map((database, i) => ({
        id: `t_${String(i + 1).padStart(6, "0")}`,
        slug: database.replaceAll("_", "-"),
        url: stack.postgres.urlFor(database),
        version: migrations[0]?.name ?? null,
      })),
    );
    await settle(bench);
    ctx.log(`[${tenants} tenants] project path: startRun + queue() consumers, concurrency ${concurrency}`);
    neonConfig.fetchFunction = invocationFetch(profile.fetchFunction());
    const before = cpuSnapshot();
    let rollout: FleetRollout;
    try {
      rollout = await rolloutThroughQueue(fleet, concurrency);
    } finally {
      neonConfig.fetchFunction = undefined;
    }
    const cpu = cpuBetween(before, cpuSnapshot(), tenants);
    const latest = migrations.at(-1)?.name ?? "";
    const { rows } = await control.query<{ n: string }>(
      "SELECT count(*) AS n FROM tenants WHERE schema_version IS DISTINCT FROM $1",
      [latest],
    );
    const wrong = await verifySet(bench, names, "tenantry.migrations");
    await dropDatabases(bench.admin, names, bench.created);
    if (rollout.progress.failures[0]) ctx.log(`project path, first failure: ${rollout.progress.failures[0].error}`);
    return { rollout, cpu, wrong: wrong.length, behind: Number(rows[0]?.n ?? 0) };
  } finally {
    await control.end();
  }
}

const round = (value: number) => Math.round(value * 1000) / 1000;

function summarise(times: readonly number[], wallMs: number, concurrency: number): Measurement {
  const sum = times.reduce((a, b) => a + b, 0);
  return {
    iterations: times.length,
    concurrency,
    p50: round(percentile(times, 50)),
    p99: round(percentile(times, 99)),
    mean: round(sum / Math.max(1, times.length)),
    min: round(times.length ? Math.min(...times) : Number.NaN),
    max: round(times.length ? Math.max(...times) : Number.NaN),
    opsPerSec: Math.round((times.length / wallMs) * 1000),
  };
}

/** The labelled figures of one project-path run next to its baseline. */
function projectFigures(label: string, tenants: number, base: BaselineResult, result: ProjectResult) {
  const { rollout, cpu } = result;
  const { counts } = rollout.progress;
  const invocations = rollout.queue.invocations;
  const round1 = (value: number) => Math.round(value * 10) / 10;
  return {
    [`${label}: speed-up (serial drizzle migrate() wall / project path wall)`]: ratio(
      base.timed.wallMs,
      rollout.wallMs,
    ),
    [`${label}: project path wall time (s)`]: round(rollout.wallMs / 1000),
    [`${label}: project path tenants/s`]: round1((counts.done / rollout.wallMs) * 1000),
    [`${label}: project path failed tenants`]:
      counts.failed + counts.drift + (tenants - counts.done - counts.failed - counts.drift),
    [`${label}: tenant databases not at the latest version`]: result.wrong,
    [`${label}: tenants not recorded at the latest version in the control plane`]: result.behind,
    [`${label}: run status`]: rollout.progress.status,
    [`${label}: cron dispatches needed to finish`]: rollout.cronDispatches,
    [`${label}: consumer invocations`]: invocations.length,
    [`${label}: most consumer invocations at once`]: rollout.queue.peakRunning,
    [`${label}: messages sent / redelivered / dead-lettered`]: `${rollout.queue.sent} / ${rollout.queue.retried} / ${rollout.queue.dead}`,
    [`${label}: max KV operations per invocation`]: Math.max(
      rollout.starter.kvOperations,
      ...invocations.map((i) => i.kvOperations),
    ),
    [`${label}: max subrequests per invocation`]: Math.max(
      rollout.starter.subrequests,
      ...invocations.map((i) => i.subrequests),
    ),
    [`${label}: invocations over a limit`]: [rollout.starter, ...invocations].filter((i) => i.refusals.length > 0)
      .length,
    [`${label}: Node CPU ms per tenant (client + gateway)`]: round1(cpu.nodeMsPerTenant),
    ...(cpu.otherMsPerTenant === undefined || cpu.machineBusy === undefined
      ? {}
      : {
          [`${label}: Postgres CPU ms per tenant`]: round1(cpu.otherMsPerTenant),
          [`${label}: machine busy (1 = all ${cpus().length} cores)`]: Math.round(cpu.machineBusy * 100) / 100,
        }),
  };
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const tenantCounts = listFlag(ctx, "tenants", ctx.quick ? [20] : DEFAULT_TENANTS);
  const concurrencies = listFlag(ctx, "concurrency", ctx.quick ? [16] : DEFAULT_CONCURRENCY);
  if (concurrencies.some((c) => c > 250)) throw new Error("--concurrency above 250 is more than a run allows");
  const profile = new NeonLikeProfile({
    rttMs: msFlag(ctx, "rtt", NEON_LIKE_DEFAULTS.rttMs),
    wakeMs: msFlag(ctx, "wake", NEON_LIKE_DEFAULTS.wakeMs),
  });
  const name = `Neon-like (${profile.options.rttMs} ms RTT, ${profile.options.wakeMs} ms wake-up)`;

  ctx.log("starting Postgres and the gateway");
  // Tenant pools close fast so no tenant starts its timed rollout on a connection left warm by the
  // setup; the control database gets a pool wide enough for every consumer at once.
  const stack = await startLocalStack({ gateway: { port: 0, maxTotal: 150, maxPerPool: 24, idleMs: 1_000 } });
  neonConfig.fetchEndpoint = stack.gateway.url;
  const admin = new pg.Pool({ connectionString: stack.postgres.url, max: SETUP_CONCURRENCY });
  // An idle setup connection the server drops must not end the process; the next query reports it.
  admin.on("error", () => {});
  const firstOnly = await firstMigrationFolder();
  const created: string[] = [];
  const measurements: Record<string, Measurement> = {};
  const derived: Record<string, number | string> = {
    profile: name,
    "migrations per tenant": migrations.length - 1,
    cores: cpus().length,
  };
  try {
    const controlUrl = await ensureControlDatabase(stack.postgres.url, CONTROL_DATABASE);
    created.push(CONTROL_DATABASE);
    const fleet: FleetSetup = {
      controlUrl,
      gatewayUrl: stack.gateway.url,
      encryptionKeys: newKeyRing(),
      kv: memoryKv(),
    };
    const bench: Bench = { ctx, stack, admin, firstOnly, created, profile, fleet };
    for (const tenants of tenantCounts) {
      const base = await baseline(bench, tenants);
      const label = `${name}, ${tenants} tenants`;
      measurements[`${label} · drizzle migrate() serial loop (per tenant)`] = base.timed.measurement;
      Object.assign(derived, {
        [`${label}: baseline wall time (s)`]: round(base.timed.wallMs / 1000),
        [`${label}: baseline tenants/s`]: Math.round(((tenants - base.timed.failed) / base.timed.wallMs) * 10_000) / 10,
        [`${label}: baseline failed tenants`]: base.timed.failed,
        [`${label}: baseline databases not at the latest version`]: base.wrong,
      });
      for (const concurrency of concurrencies) {
        const result = await project(bench, tenants, concurrency);
        const at = `${label}, concurrency ${concurrency}`;
        measurements[`${at} · project path (per tenant, claim to record)`] = summarise(
          result.rollout.durations,
          result.rollout.wallMs,
          concurrency,
        );
        Object.assign(derived, projectFigures(at, tenants, base, result));
      }
    }
    derived["database wake-ups paid (both paths, every run)"] = profile.wakes;
  } finally {
    neonConfig.fetchFunction = undefined;
    await rm(firstOnly, { recursive: true, force: true }).catch(() => {});
    // The gateway goes first so its pool connections to the tenant databases are closed.
    await stack.gateway.close();
    if (process.env.DATABASE_URL) {
      ctx.log(`dropping ${created.length} databases`);
      await dropDatabases(admin, [...created], created, true);
    }
    await admin.end().catch(() => {});
    ctx.log("stopping the stack");
    await stack.stop();
  }
  return { measurements, derived };
}

const suite: Suite = {
  name: "fleet",
  description:
    "one 3-migration rollout to N tenants at Neon-like latency: the fleet's queue path vs a serial drizzle migrate() loop",
  run,
};

export default suite;
