/**
 * The local gateway's overhead: the same queries through `neon()` → gateway → Postgres (HTTP,
 * `/sql`), through the driver's `Pool` → gateway → Postgres (WebSocket, `/v2`) and through `pg`
 * straight to Postgres, in one run on one machine.
 *
 * Laid out as in real use. The gateway runs in a process of its own (bench/gateway-process.ts), as
 * it does beside workerd under `npm run dev` and the Worker tests: sharing this process's event
 * loop with the client charged every HTTP query twice on one thread.
 *
 * The 8-in-flight HTTP ratio compares like with like: both clients in this Node process, each the
 * real driver with its best transport, `pg.Pool` straight to Postgres and `neon()` through the
 * gateway with `gatewayFetch`, the keep-alive `node:http` fetch every Node user of the local stack
 * gets (`useGatewayFetch`: seed, migrations, node tests). All paths alternate in rounds so drift on
 * a shared machine hits them alike. Also measured, each under its own label: `neon()` with Node's
 * default fetch (undici), `neon()` inside workerd as a Worker under miniflare sends its queries
 * (bench/gateway-client/; miniflare routes every outbound fetch through a JavaScript interceptor
 * Worker), `Pool` over the `/v2` WebSocket, and each HTTP client's own ceiling: `neon()` against a
 * canned `/sql` answer that touches no database.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { neon, neonConfig, Pool } from "@neondatabase/serverless";
import pg from "pg";
import ws from "ws";
import { gatewayFetch, useGatewayFetch } from "../../src/dev/gateway/node-fetch.ts";
import { startTestPostgres } from "../../src/dev/postgres.ts";
import { applyLocalNeon } from "../../src/shared/neon-local.ts";
import { startWorkerdClient, type WorkerdClient } from "../gateway-client/client.ts";
import { type GatewayProcess, startGatewayProcess } from "../gateway-process.ts";
import {
  type BenchContext,
  type Measurement,
  measure,
  measureAlternating,
  ratio,
  type Suite,
  type SuiteResult,
  type Timed,
  timeCalls,
} from "../lib.ts";

const ROWS = 1_000;

function expectRows(rows: readonly unknown[], count: number, what: string): void {
  if (rows.length !== count) throw new Error(`${what}: expected ${count} rows, got ${rows.length}`);
}

/** Size of the gateway's answer as the driver asks for it (raw text, array mode). */
async function responseBytes(gatewayUrl: string, connectionString: string, query: string): Promise<number> {
  const response = await fetch(gatewayUrl, {
    method: "POST",
    headers: {
      "Neon-Connection-String": connectionString,
      "Neon-Raw-Text-Output": "true",
      "Neon-Array-Mode": "true",
    },
    body: JSON.stringify({ query, params: [] }),
  });
  if (!response.ok) throw new Error(`gateway answered ${response.status}`);
  return (await response.arrayBuffer()).byteLength;
}

/** A `/sql` that answers `SELECT 1` from memory: what `neon()` costs with a free gateway. */
async function startCannedSql(): Promise<{ url: string; close(): void }> {
  const answer = Buffer.from(
    JSON.stringify({
      command: "SELECT",
      rowCount: 1,
      rows: [["1"]],
      fields: [
        {
          name: "?column?",
          dataTypeID: 23,
          tableID: 0,
          columnID: 0,
          dataTypeSize: 4,
          dataTypeModifier: -1,
          format: "text",
        },
      ],
      rowAsArray: true,
    }),
  );
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json", "content-length": answer.length });
      response.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sql`,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const plan = ctx.quick
    ? { tiny: { iterations: 200, warmup: 20 }, wide: { iterations: 50, warmup: 5 } }
    : { tiny: { iterations: 2_000, warmup: 200 }, wide: { iterations: 300, warmup: 30 } };
  const concurrent = { ...plan.tiny, concurrency: 8, rounds: ctx.quick ? 2 : 4 };

  ctx.log("starting Postgres, the gateway (own process) and the workerd client");
  const postgres = await startTestPostgres();
  const database = `bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: postgres.url });
  let gateway: GatewayProcess | undefined;
  let workerd: WorkerdClient | undefined;
  let canned: Awaited<ReturnType<typeof startCannedSql>> | undefined;
  let direct: pg.Client | undefined;
  let pool: pg.Pool | undefined;
  let sessions: Pool | undefined;
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = postgres.urlFor(database);
    gateway = await startGatewayProcess();
    workerd = await startWorkerdClient(url);
    canned = await startCannedSql();

    direct = new pg.Client({ connectionString: url });
    await direct.connect();
    await direct.query(`CREATE TABLE items (
      id int PRIMARY KEY,
      qty int NOT NULL,
      label text NOT NULL,
      price numeric(12, 2) NOT NULL,
      created_at timestamptz NOT NULL,
      payload jsonb NOT NULL
    )`);
    await direct.query(
      `INSERT INTO items
       SELECT i, i % 97, 'item ' || i || ' ' || md5(i::text), (i * 1.37)::numeric(12, 2),
              timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
              jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b', i % 5), 'ok', i % 2 = 0)
       FROM generate_series(1, $1) AS i`,
      [ROWS],
    );
    await direct.query("ANALYZE items");

    applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gateway.url });
    useGatewayFetch(neonConfig, gateway.url);
    neonConfig.webSocketConstructor = ws;
    const sql = neon(url);
    sessions = new Pool({ connectionString: url, max: concurrent.concurrency });
    const overWebSocket = sessions;
    const wideQuery = "SELECT id, qty, label, price, created_at, payload FROM items ORDER BY id";

    // Check every path answers correctly before timing them.
    expectRows(await sql.query(wideQuery), ROWS, "neon() wide select");
    expectRows((await direct.query(wideQuery)).rows, ROWS, "pg wide select");
    expectRows((await overWebSocket.query(wideQuery)).rows, ROWS, "Pool wide select");
    expectRows((await workerd.run(gateway.url, 1, 1)).times, 1, "neon() in workerd");

    const measurements: Record<string, Measurement> = {};
    const time = async (name: string, fn: () => Promise<unknown>, options: Parameters<typeof measure>[1]) => {
      ctx.log(`${name} (${options.iterations} iterations${options.concurrency ? ` × ${options.concurrency}` : ""})`);
      measurements[name] = await measure(fn, options);
    };

    await time("SELECT 1 · neon() via gateway", () => sql.query("SELECT 1"), plan.tiny);
    await time("SELECT 1 · pg direct", () => (direct as pg.Client).query("SELECT 1"), plan.tiny);
    await time("SELECT 1 · Pool via gateway /v2", () => overWebSocket.query("SELECT 1"), plan.tiny);
    await time(`${ROWS} rows · neon() via gateway`, () => sql.query(wideQuery), plan.wide);
    await time(`${ROWS} rows · pg direct`, () => (direct as pg.Client).query(wideQuery), plan.wide);
    await time(`${ROWS} rows · Pool via gateway /v2`, () => overWebSocket.query(wideQuery), plan.wide);

    pool = new pg.Pool({ connectionString: url, max: concurrent.concurrency });
    const directPool = pool;
    const client = workerd;
    const gatewayProcess = gateway;
    const gatewayUrl = gateway.url;
    const cannedUrl = canned.url;
    const calls = (fn: () => Promise<unknown>) => (n: number, c: number) => timeCalls(fn, n, c);
    // The gateway's own CPU per query, apart from the clients', for the cases that go through it.
    const gatewayCpu = new Map<string, { seconds: number; queries: number }>();
    const metered =
      (name: string, run: (n: number, c: number) => Promise<Timed>) =>
      async (n: number, c: number): Promise<Timed> => {
        const before = gatewayProcess.cpuSeconds() ?? Number.NaN;
        const timed = await run(n, c);
        const total = gatewayCpu.get(name) ?? { seconds: 0, queries: 0 };
        total.seconds += (gatewayProcess.cpuSeconds() ?? Number.NaN) - before;
        total.queries += n;
        gatewayCpu.set(name, total);
        return timed;
      };
    const cpuPerQuery = (name: string) => {
      const total = gatewayCpu.get(name);
      return total ? Math.round((total.seconds / total.queries) * 1e6) : Number.NaN;
    };
    // The driver reads fetchEndpoint and fetchFunction from neonConfig at every query, so each
    // Node case sets both before it runs (cases run one at a time).
    const viaNode = (endpoint: string, fetchFunction: typeof gatewayFetch | undefined) => (n: number, c: number) => {
      neonConfig.fetchEndpoint = endpoint;
      neonConfig.fetchFunction = fetchFunction;
      return timeCalls(() => sql.query("SELECT 1"), n, c);
    };
    ctx.log(
      `SELECT 1 ×8, every path in ${concurrent.rounds} alternating rounds (${concurrent.iterations} iterations each)`,
    );
    Object.assign(
      measurements,
      await measureAlternating(
        {
          "SELECT 1 ×8 · pg.Pool direct": calls(() => directPool.query("SELECT 1")),
          "SELECT 1 ×8 · neon() in Node via gateway": metered("node", viaNode(gatewayUrl, gatewayFetch)),
          "SELECT 1 ×8 · neon() in Node via gateway, default fetch": viaNode(gatewayUrl, undefined),
          "SELECT 1 ×8 · neon() in workerd via gateway": metered("workerd", (n, c) => client.run(gatewayUrl, n, c)),
          "SELECT 1 ×8 · Pool via gateway /v2": calls(() => overWebSocket.query("SELECT 1")),
          "SELECT 1 ×8 · neon() in Node to a canned /sql (client only)": viaNode(cannedUrl, gatewayFetch),
          "SELECT 1 ×8 · neon() in Node to a canned /sql, default fetch (client only)": viaNode(cannedUrl, undefined),
          "SELECT 1 ×8 · neon() in workerd to a canned /sql (client only)": (n, c) => client.run(cannedUrl, n, c),
        },
        concurrent,
      ),
    );

    const p50 = (name: string) => measurements[name]?.p50 ?? Number.NaN;
    const ops = (name: string) => measurements[name]?.opsPerSec ?? Number.NaN;
    const vsPool = (name: string) => ratio(ops(name), ops("SELECT 1 ×8 · pg.Pool direct"));
    return {
      measurements,
      derived: {
        "SELECT 1 p50 ratio (gateway / direct)": ratio(
          p50("SELECT 1 · neon() via gateway"),
          p50("SELECT 1 · pg direct"),
        ),
        [`${ROWS} rows p50 ratio (gateway / direct)`]: ratio(
          p50(`${ROWS} rows · neon() via gateway`),
          p50(`${ROWS} rows · pg direct`),
        ),
        "SELECT 1 ×8 throughput ratio (gateway / direct)": vsPool("SELECT 1 ×8 · neon() in Node via gateway"),
        "SELECT 1 ×8 client-only ceiling ratio (neon() to canned /sql / direct)": vsPool(
          "SELECT 1 ×8 · neon() in Node to a canned /sql (client only)",
        ),
        "SELECT 1 p50 ratio (Pool via /v2 / direct)": ratio(
          p50("SELECT 1 · Pool via gateway /v2"),
          p50("SELECT 1 · pg direct"),
        ),
        "SELECT 1 ×8 throughput ratio (Pool via /v2 / direct)": vsPool("SELECT 1 ×8 · Pool via gateway /v2"),
        "SELECT 1 ×8 throughput ratio, Node default fetch (undici)": vsPool(
          "SELECT 1 ×8 · neon() in Node via gateway, default fetch",
        ),
        "SELECT 1 ×8 client-only ceiling ratio, Node default fetch (undici)": vsPool(
          "SELECT 1 ×8 · neon() in Node to a canned /sql, default fetch (client only)",
        ),
        "SELECT 1 ×8 throughput ratio, workerd client under miniflare": vsPool(
          "SELECT 1 ×8 · neon() in workerd via gateway",
        ),
        "SELECT 1 ×8 client-only ceiling ratio, workerd client under miniflare": vsPool(
          "SELECT 1 ×8 · neon() in workerd to a canned /sql (client only)",
        ),
        "gateway CPU per /sql SELECT 1 at 8 in flight, Node client (µs, its own process)": cpuPerQuery("node"),
        "gateway CPU per /sql SELECT 1 at 8 in flight, workerd client (µs, its own process)": cpuPerQuery("workerd"),
        "wide response size (bytes on the wire)": await responseBytes(gateway.url, url, wideQuery),
      },
    };
  } finally {
    await pool?.end().catch(() => {});
    await sessions?.end().catch(() => {});
    await direct?.end().catch(() => {});
    canned?.close();
    await workerd?.close().catch(() => {});
    // The gateway goes first so its pool connections to the benchmark database are closed.
    await gateway?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    ctx.log("stopping Postgres");
    await postgres.stop();
  }
}

const suite: Suite = {
  name: "gateway",
  description: "neon() and Pool through the local gateway vs pg straight to Postgres",
  run,
};

export default suite;
