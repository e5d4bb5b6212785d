/**
 * Fleet rollout: one schema change (the 3 migrations after 0000_store) applied to N tenant
 * databases (200 by default, `--tenants N`, `--quick` 20) on one embedded Postgres, in one run:
 *
 * - project path: the per-tenant work of the fleet queue consumer, `migrateDatabase(neon(url),
 *   bundle)` over the SQL-over-HTTP gateway (one transaction + advisory lock + ledger row per
 *   migration), `--concurrency` tenants at once (default 16);
 * - baseline: a serial loop of drizzle-orm's own `migrate()` over node-postgres, one `pg.Client` per
 *   tenant, with the real migrations/ folder (how Neon's database-per-tenant reference repo rolls
 *   a change out).
 *
 * `--rtt MS[,MS…]` (default `0,2`: loopback, then a 2 ms round trip) models a network between the
 * migrating side and the database: every HTTP request to the gateway waits MS first (a Worker
 * calling Neon's HTTP endpoint in the database's region: one round trip per request), and the
 * baseline's pg connections go through a TCP relay that holds every chunk MS/2 in each direction
 * (an operator's loop calling the database: one round trip per protocol exchange; the TCP and TLS
 * handshakes are not modelled, which favours the baseline). With 0, everything is on loopback.
 * Each network is measured on its own.
 *
 * Each path gets its own set of N databases, created first and brought to 0000_store by the same
 * tool that later migrates it, so both start from the same schema. Afterwards every database of
 * both sets is checked for the three changes and its ledger, then dropped. The databases live in a
 * throwaway cluster that is deleted when the stack stops (DATABASE_URL: the server is kept).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { projectRoot } from "../../src/cli/project-config.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { migrateDatabase } from "../../src/shared/migrations.ts";
import {
  type BenchContext,
  flagValue,
  type Measurement,
  MS_PER_TICK,
  machineCpu,
  percentile,
  positiveIntFlag,
  ratio,
  type Suite,
  type SuiteResult,
} from "../lib.ts";

const MIGRATIONS_DIR = join(projectRoot, "migrations");
/** Tenants migrated at once on the project path (the run's `concurrency`). */
const DEFAULT_CONCURRENCY = 16;
/**
 * Networks modelled by default: loopback (the database on this machine, which no Neon user has)
 * and a 2 ms round trip (less than any real Worker → Neon or operator → Neon path).
 */
const DEFAULT_RTTS = [0, 2];
/** Databases created and prepared at once (setup, untimed). */
const SETUP_CONCURRENCY = 8;

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

/** Network round trips to model, in ms (0..1000 each): `--rtt 0,2` by default. */
function rttFlag(ctx: BenchContext): number[] {
  const value = flagValue(ctx, "rtt") ?? DEFAULT_RTTS.join(",");
  const list = value.split(",").map((part) => Number(part.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < 0 || n > 1_000)) {
    throw new Error(`--rtt must be a comma-separated list of 0..1000 ms, got ${value}`);
  }
  return [...new Set(list)];
}

/** A TCP relay to `port` that holds every chunk `delayMs` in each direction (order is kept). */
async function startDelayRelay(
  host: string,
  port: number,
  delayMs: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => setTimeout(() => to.write(chunk), delayMs));
    from.on("end", () => setTimeout(() => to.end(), delayMs));
    from.on("error", () => to.destroy());
    from.on("close", () => setTimeout(() => to.destroy(), delayMs + 1));
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.setNoDelay(true);
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the relay has no port");
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
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

function cpuFigures(label: string, timed: Timed): Record<string, number> {
  const round1 = (value: number) => Math.round(value * 10) / 10;
  const { nodeMsPerTenant, otherMsPerTenant, machineBusy } = timed.cpu;
  return {
    [`${label} Node CPU ms per tenant (this process: client + gateway)`]: round1(nodeMsPerTenant),
    ...(otherMsPerTenant === undefined || machineBusy === undefined
      ? {}
      : {
          [`${label} Postgres (all other processes) CPU ms per tenant`]: round1(otherMsPerTenant),
          [`${label} machine busy (1 = all ${cpus().length} cores)`]: Math.round(machineBusy * 100) / 100,
        }),
  };
}

interface Network {
  readonly rtt: number;
  readonly project: Timed;
  readonly baseline: Timed;
  readonly wrong: number;
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const tenants = positiveIntFlag(ctx, "tenants") ?? (ctx.quick ? 20 : 200);
  const concurrency = positiveIntFlag(ctx, "concurrency") ?? DEFAULT_CONCURRENCY;
  if (concurrency > 80) throw new Error("--concurrency above 80 would exceed the cluster's 200 connections");
  const rtts = rttFlag(ctx);

  ctx.log("starting Postgres and the gateway");
  // Per tenant one connection at a time (its requests are sequential); idle pools close fast so
  // no tenant starts its timed rollout on a connection left warm by the setup.
  const stack = await startLocalStack({
    gateway: { port: 0, maxTotal: concurrency * 2 + 16, maxPerPool: 2, idleMs: 1_000 },
  });
  neonConfig.fetchEndpoint = stack.gateway.url;
  const admin = new pg.Pool({ connectionString: stack.postgres.url, max: SETUP_CONCURRENCY });
  // An idle setup connection the server drops must not end the process; the next query reports it.
  admin.on("error", () => {});
  const firstOnly = await firstMigrationFolder();
  const created: string[] = [];
  const networks: Network[] = [];
  let connect: { wallMs: number; cpuMs: number | undefined; databases: number } | undefined;
  try {
    connect = await connectCost(ctx, stack, admin, created, Math.min(50, tenants));
    for (const rtt of rtts) {
      networks.push(await rollout(ctx, { stack, admin, firstOnly, created, tenants, concurrency, rtt }));
    }
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

  const measurements: Record<string, Measurement> = {};
  const derived: Record<string, number> = {
    tenants,
    "migrations per tenant": migrations.length - 1,
    "project path concurrency": concurrency,
    cores: cpus().length,
  };
  if (connect) {
    const round2 = (value: number) => Math.round(value * 100) / 100;
    derived[
      `connect + SELECT 1 + close, a database never connected to before: wall ms (mean of ${connect.databases})`
    ] = round2(connect.wallMs);
    if (connect.cpuMs !== undefined)
      derived["connect + SELECT 1 + close, a database never connected to before: CPU ms, every process"] = round2(
        connect.cpuMs,
      );
  }
  for (const { rtt, project, baseline, wrong } of networks) {
    const net = rtt === 0 ? "loopback" : `${rtt} ms RTT`;
    const perSecond = (t: Timed) => Math.round(((tenants - t.failed) / t.wallMs) * 1000 * 10) / 10;
    measurements[`${net} · project path, ${concurrency} at once (per tenant)`] = project.measurement;
    measurements[`${net} · drizzle migrate() serial loop (per tenant)`] = baseline.measurement;
    const pgMs = project.cpu.otherMsPerTenant;
    const allMs = pgMs === undefined ? undefined : pgMs + project.cpu.nodeMsPerTenant;
    Object.assign(derived, {
      [`${net}: project path wall time (s)`]: Math.round(project.wallMs) / 1000,
      [`${net}: baseline wall time (s)`]: Math.round(baseline.wallMs) / 1000,
      [`${net}: project path tenants/s`]: perSecond(project),
      [`${net}: baseline tenants/s`]: perSecond(baseline),
      [`${net}: speed-up (baseline wall / project wall)`]: ratio(baseline.wallMs, project.wallMs),
      // The project path cannot finish before its own CPU work (client, gateway and Postgres)
      // spread over every core, nor before its Postgres work alone: the most this machine allows.
      ...(pgMs && allMs
        ? {
            [`${net}: speed-up ceiling (baseline wall / project CPU of every process over ${cpus().length} cores)`]:
              ratio(baseline.wallMs, (allMs * tenants) / cpus().length),
            [`${net}: speed-up ceiling (baseline wall / project Postgres CPU over ${cpus().length} cores)`]: ratio(
              baseline.wallMs,
              (pgMs * tenants) / cpus().length,
            ),
          }
        : {}),
      [`${net}: failed tenants (project path)`]: project.failed,
      [`${net}: failed tenants (baseline)`]: baseline.failed,
      [`${net}: tenants not at the latest schema after the run`]: wrong,
      ...cpuFigures(`${net}: project path`, project),
      ...cpuFigures(`${net}: baseline`, baseline),
    });
  }
  return { measurements, derived };
}

/**
 * What every path pays per tenant before any migration: a connection to a database nobody has
 * connected to yet (backend start, authentication, catalog caches), serially, over pg.
 */
async function connectCost(
  ctx: BenchContext,
  stack: Awaited<ReturnType<typeof startLocalStack>>,
  admin: pg.Pool,
  created: string[],
  count: number,
): Promise<{ wallMs: number; cpuMs: number | undefined; databases: number }> {
  const names = Array.from({ length: count }, (_, i) => `fleet_connect_${String(i + 1).padStart(5, "0")}`);
  ctx.log(`connection cost: ${count} fresh databases, connect + SELECT 1 + close each, one after another`);
  await pool(names, SETUP_CONCURRENCY, async (database) => {
    await admin.query(`CREATE DATABASE ${database}`);
    created.push(database);
  });
  await admin.query("CHECKPOINT");
  const before = cpuSnapshot();
  const started = performance.now();
  for (const database of names) {
    const client = new pg.Client({ connectionString: stack.postgres.urlFor(database) });
    await client.connect();
    await client.query("SELECT 1");
    await client.end();
  }
  const wallMs = (performance.now() - started) / count;
  const cpu = cpuBetween(before, cpuSnapshot(), count);
  await dropDatabases(admin, names, created);
  return {
    wallMs,
    cpuMs: cpu.otherMsPerTenant === undefined ? undefined : cpu.otherMsPerTenant + cpu.nodeMsPerTenant,
    databases: count,
  };
}

interface RolloutSetup {
  readonly stack: Awaited<ReturnType<typeof startLocalStack>>;
  readonly admin: pg.Pool;
  readonly firstOnly: string;
  /** Every database created, for the cleanup. */
  readonly created: string[];
  readonly tenants: number;
  readonly concurrency: number;
  readonly rtt: number;
}

/**
 * Both paths over one modelled network, each on its own fresh set of tenant databases, dropped
 * again at the end.
 */
async function rollout(ctx: BenchContext, setup: RolloutSetup): Promise<Network> {
  const { stack, admin, firstOnly, created, tenants, concurrency, rtt } = setup;
  const network = rtt > 0 ? `simulated round trip ${rtt} ms` : "loopback";
  const relay = rtt > 0 ? await startDelayRelay(stack.postgres.host, stack.postgres.port, rtt / 2) : undefined;
  try {
    /** The baseline's connection string: through the relay when a network is modelled. */
    const remoteUrl = (database: string) => {
      const url = new URL(stack.postgres.urlFor(database));
      if (relay) {
        url.hostname = "127.0.0.1";
        url.port = String(relay.port);
      }
      return url.toString();
    };
    const names = (set: string) =>
      Array.from({ length: tenants }, (_, i) =>
        `fleet_r${rtt}_${set}_${String(i + 1).padStart(5, "0")}`.replace(".", "_"),
      );
    const setA = names("a");
    const setB = names("b");
    ctx.log(
      `[${network}] creating ${tenants * 2} tenant databases at ${migrations[0]?.name} (${SETUP_CONCURRENCY} at once)`,
    );
    const setupStarted = performance.now();
    const jobs = setA.flatMap((a, i) => [
      { database: a, set: "a" as const },
      { database: setB[i] as string, set: "b" as const },
    ]);
    await pool(jobs, SETUP_CONCURRENCY, async ({ database, set }) => {
      await admin.query(`CREATE DATABASE ${database}`);
      created.push(database);
      const url = stack.postgres.urlFor(database);
      if (set === "a") await migrateDatabase(neon(url), migrations.slice(0, 1));
      else await drizzleMigrate(url, firstOnly);
    });
    ctx.log(`[${network}] setup took ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

    const settle = async () => {
      // No warm gateway connection left from the setup, dirty pages written out.
      const deadline = Date.now() + 10_000;
      while (stack.gateway.stats().open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await admin.query("CHECKPOINT");
    };

    await settle();
    // From here on, every HTTP request to the gateway first waits one round trip.
    neonConfig.fetchFunction =
      rtt > 0
        ? async (input: string | URL | Request, init?: RequestInit) => {
            await new Promise((resolve) => setTimeout(resolve, rtt));
            return fetch(input, init);
          }
        : undefined;
    ctx.log(
      `[${network}] project path: migrateDatabase(neon()) via the gateway, ${tenants} tenants, ${concurrency} at once`,
    );
    const project = await timeRollout(
      setA.map((db) => stack.postgres.urlFor(db)),
      concurrency,
      (url) => migrateDatabase(neon(url), migrations),
    );
    neonConfig.fetchFunction = undefined;
    await settle();
    ctx.log(`[${network}] baseline: drizzle migrate() over pg, ${tenants} tenants, one after another`);
    const baseline = await timeRollout(
      setB.map((db) => remoteUrl(db)),
      1,
      (url) => drizzleMigrate(url, MIGRATIONS_DIR),
    );

    ctx.log(`[${network}] verifying every tenant database of both sets`);
    const wrong: string[] = [];
    const projectSet = new Set(setA);
    await pool([...setA, ...setB], SETUP_CONCURRENCY, async (database) => {
      const client = new pg.Client({ connectionString: stack.postgres.urlFor(database) });
      await client.connect();
      try {
        const ledger = projectSet.has(database) ? "tenantry.migrations" : "drizzle.__drizzle_migrations";
        const { rows } = await client.query<{ changes: string; ledger: string }>(VERIFY_SQL(ledger));
        const row = rows[0];
        if (Number(row?.changes) !== migrations.length - 1 || Number(row?.ledger) !== migrations.length) {
          wrong.push(`${database} (changes ${row?.changes}, ledger rows ${row?.ledger})`);
        }
      } finally {
        await client.end();
      }
    });
    if (wrong.length > 0) ctx.log(`NOT migrated: ${wrong.slice(0, 5).join(", ")}${wrong.length > 5 ? " …" : ""}`);
    if (project.firstError) ctx.log(`project path, first error: ${project.firstError}`);
    if (baseline.firstError) ctx.log(`baseline, first error: ${baseline.firstError}`);
    // The next network starts on a cluster of the same size: every database costs the server some
    // background work (autovacuum visits each one in turn), which would tilt later networks.
    ctx.log(`[${network}] dropping its ${tenants * 2} databases`);
    await dropDatabases(admin, [...setA, ...setB], created);
    return { rtt, project, baseline, wrong: wrong.length };
  } finally {
    neonConfig.fetchFunction = undefined;
    await relay?.close();
  }
}

const suite: Suite = {
  name: "fleet",
  description: "one 3-migration rollout to N tenant databases: project path vs a serial drizzle migrate() loop",
  run,
};

export default suite;
