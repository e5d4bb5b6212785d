/**
 * Tenant export throughput and memory, against the physical limit, in one run on one machine.
 *
 * One database with `--rows N` rows (default 1,000,000; `--quick` 100,000) across three tables
 * (ints, text with tabs/newlines/NULLs, numeric, timestamptz, jsonb, arrays, small bytea; single and
 * composite primary keys), generated with generate_series on a throwaway embedded Postgres. Then:
 *
 * - export path, engine only: `exportDatabase(url)` over the Neon HTTP driver and the local
 *   SQL-over-HTTP gateway (catalog DDL + COPY blocks in keyset pages), chunks drained;
 * - export path, whole: the same chunks through `uploadGzip` (CompressionStream + equal multipart
 *   parts, the code that writes to R2) into a counting null bucket;
 * - physical limit: `COPY (SELECT * FROM t) TO STDOUT` per table over one direct connection, with
 *   psql (libpq), its output piped into this process and counted.
 *
 * Rows/s and MB/s of COPY text (the SQL's data) for each, the export/COPY ratio (target ≥ 0.3),
 * what gzip alone (CompressionStream over the same SQL held in memory) takes on this machine,
 * gzip size, and peak memory of the export path, in one more run of each that is not timed:
 * process.memoryUsage() sampled every 50 ms, peak minus the value just before the run (uncollected
 * garbage included: V8 collects lazily), and the live heap right after a full GC once a second
 * (what the export actually holds). The gateway runs in a process of its own
 * (bench/gateway-process.ts), so this process's CPU and memory are the Worker's side only, as in
 * production where the HTTP endpoint is Neon's; its CPU is reported apart. All of it (Postgres, gateway, export, gzip) shares this machine's cores, as COPY's psql
 * and Postgres do. The cases take turns, three times (once with --quick): the fastest run of each is
 * reported, and the ratio of the median runs beside it (this machine's speed drifts between runs).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import v8 from "node:v8";
import vm from "node:vm";
import { neonConfig } from "@neondatabase/serverless";
import pg from "pg";
import { exportDatabase } from "../../src/control/export/engine.ts";
import { type ExportBucket, PART_BYTES, uploadGzip } from "../../src/control/export/upload.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { applyLocalNeon } from "../../src/shared/neon-local.ts";
import { type GatewayProcess, startGatewayProcess } from "../gateway-process.ts";
import {
  type BenchContext,
  type Measurement,
  MS_PER_TICK,
  machineCpu,
  positiveIntFlag,
  ratio,
  type Suite,
  type SuiteResult,
} from "../lib.ts";

const TABLES = ["public.customers", "public.events", "public.line_items"] as const;
const MB = 1_000_000;

export async function seed(client: pg.Client, rows: number): Promise<Record<string, number>> {
  const customers = Math.max(1, Math.round(rows * 0.2));
  const lineItems = Math.max(1, Math.round(rows * 0.2));
  const events = Math.max(1, rows - customers - lineItems);
  await client.query(`CREATE TABLE customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    balance numeric(14, 4) NOT NULL,
    created_at timestamptz NOT NULL,
    tags text[] NOT NULL,
    avatar bytea,
    note text
  )`);
  await client.query(
    `INSERT INTO customers
     SELECT i, 'Customer ' || i || ' Ünïcødé', 'c' || i || '@example.com', (i * 7.3131)::numeric(14, 4),
            timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
            ARRAY['t' || (i % 7), 'g,' || (i % 3)], decode(md5(i::text), 'hex'),
            CASE WHEN i % 5 = 0 THEN NULL ELSE E'line one\\tcol\\nline two \\\\ ' || md5(i::text) END
     FROM generate_series(1, $1::int) AS i`,
    [customers],
  );
  await client.query(`CREATE TABLE events (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL,
    kind text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    at timestamptz NOT NULL,
    payload jsonb NOT NULL
  )`);
  await client.query(
    `INSERT INTO events
     SELECT i, 1 + i % $2::int, (ARRAY['view', 'cart', 'order', 'refund'])[1 + i % 4], ((i % 100000) / 100.0)::numeric(12, 2),
            timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
            jsonb_build_object('i', i, 'sku', 'SKU-' || (i % 5000), 'tags', jsonb_build_array('a', i % 5), 'ok', i % 2 = 0)
     FROM generate_series(1, $1::int) AS i`,
    [events, customers],
  );
  await client.query(`CREATE TABLE line_items (
    order_id int NOT NULL,
    pos int NOT NULL,
    sku text NOT NULL,
    qty int NOT NULL,
    price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, pos)
  )`);
  await client.query(
    `INSERT INTO line_items
     SELECT 1 + (i - 1) / 4, 1 + (i - 1) % 4, 'SKU-' || (i % 5000), 1 + i % 9, ((i % 997) * 1.01)::numeric(10, 2)
     FROM generate_series(1, $1::int) AS i`,
    [lineItems],
  );
  await client.query("CREATE INDEX events_customer_idx ON events (customer_id)");
  await client.query("VACUUM ANALYZE");
  return { "public.customers": customers, "public.events": events, "public.line_items": lineItems };
}

interface Peak {
  /** Peak minus the value just before the run, bytes (garbage not yet collected included). */
  readonly rss: number;
  readonly heap: number;
  /** Absolute peak RSS, bytes. */
  readonly rssPeak: number;
  /** Largest heap still in use right after a full GC (once a second), minus the same before the run. */
  readonly live: number;
}

/** A full-GC function: `--expose-gc` turned on at run time (the runner does not pass it). */
const collect: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
})();

/** Samples process memory every 50 ms, and the live heap after a full GC every second, until stopped. */
function memorySampler() {
  collect();
  const base = process.memoryUsage();
  let rss = base.rss;
  let heap = base.heapUsed;
  let live = base.heapUsed;
  let last = performance.now();
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
    if (performance.now() - last >= 1000) {
      collect();
      live = Math.max(live, process.memoryUsage().heapUsed);
      last = performance.now();
    }
  };
  const timer = setInterval(sample, 50);
  return {
    stop(): Peak {
      clearInterval(timer);
      sample();
      return { rss: rss - base.rss, heap: heap - base.heapUsed, rssPeak: rss, live: live - base.heapUsed };
    },
  };
}

interface Run {
  readonly ms: number;
  readonly rows: number;
  /** COPY text bytes of the data (for the export: the data part of its SQL). */
  readonly dataBytes: number;
  /** Whole SQL file (export only): DDL + data. */
  readonly sqlBytes: number;
  readonly gzipBytes: number;
  readonly parts: number;
  readonly peak: Peak | undefined;
  readonly cpuMs: number;
  /** The gateway process (Neon's side), when it can be read. */
  readonly gatewayCpuMs: number | undefined;
  /** Every other process on the machine (Postgres; for COPY also psql), when it can be read. */
  readonly othersCpuMs: number | undefined;
}

/** R2 stand-in that keeps nothing: counts parts and bytes, checks the part sizes. */
function nullBucket(): ExportBucket & { readonly sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    async createMultipartUpload() {
      return {
        async uploadPart(partNumber: number, value: ArrayBuffer | Uint8Array) {
          sizes.push(value.byteLength);
          return { partNumber, etag: String(partNumber) };
        },
        async complete() {
          if (sizes.slice(0, -1).some((size) => size !== PART_BYTES)) throw new Error("unequal parts");
          return {};
        },
        async abort() {},
      };
    },
    async put() {
      return {};
    },
    async head() {
      return null;
    },
    async delete() {},
  };
}

/** CPU ms of this process since `since` (a process.cpuUsage() reading). */
function ownCpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/** CPU ms of every process on the machine since `before`, minus the `known` ones (ms each). */
function othersCpu(before: ReturnType<typeof machineCpu>, known: number[]): number | undefined {
  const after = machineCpu();
  if (!before || !after) return undefined;
  return Math.max(0, (after.busy - before.busy) * MS_PER_TICK - known.reduce((a, b) => a + b, 0));
}

/** One export; with `sampleMemory`, memory is sampled (full GCs included), so the run is not timed. */
async function exportRun(url: string, gzip: boolean, gateway: GatewayProcess, sampleMemory = false): Promise<Run> {
  const memory = sampleMemory ? memorySampler() : undefined;
  const cpu = process.cpuUsage();
  const gatewayCpu = gateway.cpuSeconds();
  const machine = machineCpu();
  const started = performance.now();
  const exporter = exportDatabase(url);
  let gzipBytes = 0;
  let parts = 0;
  if (gzip) {
    const uploaded = await uploadGzip(nullBucket(), "bench/dump.sql.gz", exporter.chunks);
    gzipBytes = uploaded.bytes;
    parts = uploaded.parts;
  } else {
    for await (const _chunk of exporter.chunks) {
      // drained: the engine alone
    }
  }
  const ms = performance.now() - started;
  const cpuMs = ownCpuMs(cpu);
  const gatewayNow = gateway.cpuSeconds();
  const gatewayCpuMs =
    gatewayCpu === undefined || gatewayNow === undefined ? undefined : (gatewayNow - gatewayCpu) * 1000;
  const peak = memory?.stop();
  const stats = exporter.stats();
  return {
    ms,
    rows: stats.rows,
    dataBytes: stats.tables.reduce((total, t) => total + t.bytes, 0),
    sqlBytes: stats.bytes,
    gzipBytes,
    parts,
    peak,
    cpuMs,
    gatewayCpuMs,
    othersCpuMs: othersCpu(machine, [cpuMs, gatewayCpuMs ?? 0]),
  };
}

/** `COPY (SELECT * FROM t) TO STDOUT` for every table, one psql session, output counted here. */
async function copyRun(url: string): Promise<Run> {
  const machine = machineCpu();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url];
  for (const table of TABLES) args.push("-c", `COPY (SELECT * FROM ${table}) TO STDOUT`);
  const child = spawn("psql", args, { stdio: ["ignore", "pipe", "pipe"] });
  let bytes = 0;
  let rows = 0;
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) rows += 1;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", (error) =>
      reject(new Error(`psql is needed for the COPY baseline (${(error as NodeJS.ErrnoException).code})`)),
    );
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`psql exited with ${code}: ${stderr.trim()}`);
  return {
    ms: performance.now() - started,
    rows,
    dataBytes: bytes,
    sqlBytes: bytes,
    gzipBytes: 0,
    parts: 0,
    peak: undefined,
    cpuMs: 0,
    gatewayCpuMs: undefined,
    othersCpuMs: othersCpu(machine, [ownCpuMs(cpu)]),
  };
}

function fastest(runs: readonly Run[]): Run {
  return runs.reduce((best, run) => (run.ms < best.ms ? run : best));
}

function measurement(runs: readonly Run[]): Measurement {
  const times = runs.map((r) => Math.round(r.ms * 1000) / 1000);
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((total, t) => total + t, 0) / times.length;
  return {
    iterations: runs.length,
    concurrency: 1,
    p50: sorted[Math.ceil(sorted.length / 2) - 1] as number,
    p99: sorted.at(-1) as number,
    mean: Math.round(mean * 1000) / 1000,
    min: sorted[0] as number,
    max: sorted.at(-1) as number,
    opsPerSec: Math.round((runs.length / times.reduce((total, t) => total + t, 0)) * 1000 * 100) / 100,
  };
}

const perSecond = (count: number, ms: number) => Math.round(count / (ms / 1000));
const mbPerSecond = (bytes: number, ms: number) => Math.round((bytes / MB / (ms / 1000)) * 10) / 10;
const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const rows = positiveIntFlag(ctx, "rows") ?? (ctx.quick ? 100_000 : 1_000_000);
  const repeats = ctx.quick ? 1 : 3;

  ctx.log("starting Postgres and the gateway");
  const stack = await startLocalStack({ gateway: { port: 0 } });
  // The export talks to a gateway in its own process: this process is then the Worker's side only
  // (its CPU and memory), as in production where the HTTP endpoint is Neon's.
  const gateway = await startGatewayProcess().catch(async (error: unknown) => {
    await stack.stop();
    throw error;
  });
  // HTTP for the reads, the gateway's WebSocket for the session holding the export's snapshot.
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gateway.url });
  const database = `bench_export_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: stack.postgres.url });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = stack.postgres.urlFor(database);
    ctx.log(`generating ${rows.toLocaleString("en-US")} rows`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let expected: Record<string, number>;
    try {
      expected = await seed(client, rows);
    } finally {
      await client.end();
    }

    const copies: Run[] = [];
    const engines: Run[] = [];
    const wholes: Run[] = [];
    for (let i = 0; i < repeats; i++) {
      ctx.log(`COPY TO STDOUT via psql (run ${i + 1}/${repeats})`);
      copies.push(await copyRun(url));
      ctx.log(`export, engine only (run ${i + 1}/${repeats})`);
      engines.push(await exportRun(url, false, gateway));
      ctx.log(`export, engine + gzip + multipart (run ${i + 1}/${repeats})`);
      wholes.push(await exportRun(url, true, gateway));
    }

    // What gzip alone costs here: CompressionStream over the same SQL, already in memory as bytes.
    ctx.log("gzip alone: CompressionStream over the export's SQL, held in memory");
    const sqlChunks: string[] = [];
    for await (const chunk of exportDatabase(url).chunks) sqlChunks.push(chunk);
    const blob = new Blob(sqlChunks);
    sqlChunks.length = 0;
    const gzipStarted = performance.now();
    let gzipAloneBytes = 0;
    for await (const part of blob.stream().pipeThrough(new CompressionStream("gzip"))) {
      gzipAloneBytes += part.byteLength;
    }
    const gzipAloneMs = performance.now() - gzipStarted;

    // Same data on every path: rows, and the COPY text itself (the export writes COPY's format).
    for (const r of [...copies, ...engines, ...wholes]) {
      if (r.rows !== rows) throw new Error(`expected ${rows} rows, a run saw ${r.rows}`);
    }
    const copy = fastest(copies);
    const engine = fastest(engines);
    const whole = fastest(wholes);
    if (engine.dataBytes !== copy.dataBytes)
      throw new Error(`the export's COPY data is ${engine.dataBytes} bytes, COPY TO STDOUT's ${copy.dataBytes}`);
    // Memory in runs of their own: the sampler's full GCs would slow the timed runs down.
    ctx.log("export, engine only and whole path, memory sampled (not timed)");
    const engineMemory = (await exportRun(url, false, gateway, true)).peak;
    const wholeMemory = (await exportRun(url, true, gateway, true)).peak;
    const peakMb = (peak: Peak | undefined, key: keyof Peak) => mb(peak?.[key] ?? 0);

    return {
      measurements: {
        [`COPY (SELECT * FROM t) TO STDOUT, psql · ${rows} rows (per run)`]: measurement(copies),
        [`export engine only, HTTP driver · ${rows} rows (per run)`]: measurement(engines),
        [`export engine + gzip + multipart · ${rows} rows (per run)`]: measurement(wholes),
      },
      derived: {
        rows,
        tables: Object.entries(expected)
          .map(([name, n]) => `${name} ${n}`)
          .join(", "),
        "COPY data (MB, identical on both paths)": mb(copy.dataBytes),
        "export SQL file (MB, DDL + data)": mb(whole.sqlBytes),
        "export gzip (MB)": mb(whole.gzipBytes),
        "gzip parts (5 MiB)": whole.parts,
        "COPY rows/s": perSecond(copy.rows, copy.ms),
        "COPY MB/s": mbPerSecond(copy.dataBytes, copy.ms),
        "export engine only rows/s": perSecond(engine.rows, engine.ms),
        "export engine only MB/s of SQL": mbPerSecond(engine.sqlBytes, engine.ms),
        "export whole path rows/s": perSecond(whole.rows, whole.ms),
        "export whole path MB/s of SQL": mbPerSecond(whole.sqlBytes, whole.ms),
        "ratio export whole path / COPY (rows/s; target ≥ 0.3)": ratio(copy.ms, whole.ms),
        "ratio export engine only / COPY (rows/s)": ratio(copy.ms, engine.ms),
        "ratio export whole path / COPY, median runs": ratio(measurement(copies).p50, measurement(wholes).p50),
        "gzip + multipart share of the whole path (1 − engine/whole; noisy)": ratio(whole.ms - engine.ms, whole.ms),
        "gzip alone: CompressionStream over the SQL in memory (s)": Math.round(gzipAloneMs) / 1000,
        "gzip alone MB/s of SQL": mbPerSecond(blob.size, gzipAloneMs),
        "gzip alone output (MB)": mb(gzipAloneBytes),
        "gzip alone / COPY wall time": ratio(gzipAloneMs, copy.ms),
        "export whole path CPU s (this process: the Worker's side, gzip threads included)":
          Math.round(whole.cpuMs / 100) / 10,
        ...(copy.othersCpuMs === undefined || whole.othersCpuMs === undefined || engine.othersCpuMs === undefined
          ? {}
          : {
              "COPY: Postgres + psql CPU s": Math.round(copy.othersCpuMs / 100) / 10,
              "export engine only: Postgres CPU s (every other process)": Math.round(engine.othersCpuMs / 100) / 10,
              "export whole path: Postgres CPU s (every other process)": Math.round(whole.othersCpuMs / 100) / 10,
            }),
        ...(whole.gatewayCpuMs === undefined
          ? {}
          : { "gateway process CPU s, whole path run (Neon's side)": Math.round(whole.gatewayCpuMs / 100) / 10 }),
        "peak RSS over baseline, engine only (MB)": peakMb(engineMemory, "rss"),
        "peak heapUsed over baseline, engine only (MB)": peakMb(engineMemory, "heap"),
        "peak RSS over baseline, whole path (MB)": peakMb(wholeMemory, "rss"),
        "peak heapUsed over baseline, whole path (MB)": peakMb(wholeMemory, "heap"),
        "peak live heap after GC over baseline, engine only (MB)": peakMb(engineMemory, "live"),
        "peak live heap after GC over baseline, whole path (MB)": peakMb(wholeMemory, "live"),
        "peak RSS, absolute (MB)": mb(Math.max(engineMemory?.rssPeak ?? 0, wholeMemory?.rssPeak ?? 0)),
        "COPY baseline": "psql (libpq) COPY … TO STDOUT over a direct connection, output piped here and counted",
      },
    };
  } finally {
    await gateway.close();
    await stack.gateway.close();
    if (process.env.DATABASE_URL) await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    await stack.stop();
  }
}

const suite: Suite = {
  name: "export",
  description: "tenant export (HTTP driver → SQL → gzip → multipart) vs COPY TO STDOUT",
  run,
};

export default suite;
