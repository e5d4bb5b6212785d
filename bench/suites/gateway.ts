/**
 * The local gateway's overhead: the same queries through `neon()` → gateway → Postgres (HTTP,
 * `/sql`), through the driver's `Pool` → gateway → Postgres (WebSocket, `/v2`) and through `pg`
 * straight to Postgres, in one run on one machine.
 *
 * The client's own share is measured too: `neon()` against a canned `/sql` answer that touches no
 * database. In Node, `neon()` goes through undici's `fetch`, and at 8 in flight that client alone
 * caps the HTTP path well below `pg` direct; the Worker's `fetch` in workerd is not undici.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { neon, neonConfig, Pool } from "@neondatabase/serverless";
import pg from "pg";
import ws from "ws";
import { startLocalStack } from "../../src/dev/stack.ts";
import { applyLocalNeon } from "../../src/shared/neon-local.ts";
import { type BenchContext, type Measurement, measure, ratio, type Suite, type SuiteResult } from "../lib.ts";

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

/** What `neon()` costs on its own: 8 in flight against a server that answers `SELECT 1` from memory. */
async function clientOnly(options: Parameters<typeof measure>[1]): Promise<Measurement> {
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
  const endpoint = neonConfig.fetchEndpoint;
  try {
    neonConfig.fetchEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sql`;
    const sql = neon("postgresql://bench:bench@127.0.0.1:5432/bench");
    return await measure(() => sql.query("SELECT 1"), options);
  } finally {
    neonConfig.fetchEndpoint = endpoint;
    server.closeAllConnections();
    server.close();
  }
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const plan = ctx.quick
    ? { tiny: { iterations: 200, warmup: 20 }, wide: { iterations: 50, warmup: 5 } }
    : { tiny: { iterations: 2_000, warmup: 200 }, wide: { iterations: 300, warmup: 30 } };
  const concurrent = { ...plan.tiny, concurrency: 8 };

  ctx.log("starting Postgres and the gateway");
  const stack = await startLocalStack({ gateway: { port: 0 } });
  const database = `bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: stack.postgres.url });
  let direct: pg.Client | undefined;
  let pool: pg.Pool | undefined;
  let sessions: Pool | undefined;
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = stack.postgres.urlFor(database);

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

    applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: stack.gateway.url });
    neonConfig.webSocketConstructor = ws;
    const sql = neon(url);
    sessions = new Pool({ connectionString: url, max: concurrent.concurrency });
    const overWebSocket = sessions;
    const wideQuery = "SELECT id, qty, label, price, created_at, payload FROM items ORDER BY id";

    // Check both paths answer correctly before timing them.
    expectRows(await sql.query(wideQuery), ROWS, "neon() wide select");
    expectRows((await direct.query(wideQuery)).rows, ROWS, "pg wide select");
    expectRows((await overWebSocket.query(wideQuery)).rows, ROWS, "Pool wide select");

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
    await time("SELECT 1 ×8 · neon() via gateway", () => sql.query("SELECT 1"), concurrent);
    await time("SELECT 1 ×8 · pg.Pool direct", () => directPool.query("SELECT 1"), concurrent);
    await time("SELECT 1 ×8 · Pool via gateway /v2", () => overWebSocket.query("SELECT 1"), concurrent);
    ctx.log("SELECT 1 ×8 · neon() to a canned /sql (client only)");
    measurements["SELECT 1 ×8 · neon() to a canned /sql (client only)"] = await clientOnly(concurrent);

    const p50 = (name: string) => measurements[name]?.p50 ?? Number.NaN;
    const ops = (name: string) => measurements[name]?.opsPerSec ?? Number.NaN;
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
        "SELECT 1 ×8 throughput ratio (gateway / direct)": ratio(
          ops("SELECT 1 ×8 · neon() via gateway"),
          ops("SELECT 1 ×8 · pg.Pool direct"),
        ),
        "SELECT 1 p50 ratio (Pool via /v2 / direct)": ratio(
          p50("SELECT 1 · Pool via gateway /v2"),
          p50("SELECT 1 · pg direct"),
        ),
        "SELECT 1 ×8 throughput ratio (Pool via /v2 / direct)": ratio(
          ops("SELECT 1 ×8 · Pool via gateway /v2"),
          ops("SELECT 1 ×8 · pg.Pool direct"),
        ),
        "SELECT 1 ×8 client-only ceiling ratio (neon() to canned /sql / direct)": ratio(
          ops("SELECT 1 ×8 · neon() to a canned /sql (client only)"),
          ops("SELECT 1 ×8 · pg.Pool direct"),
        ),
        "wide response size (bytes on the wire)": await responseBytes(stack.gateway.url, url, wideQuery),
      },
    };
  } finally {
    await pool?.end().catch(() => {});
    await sessions?.end().catch(() => {});
    await direct?.end().catch(() => {});
    // The gateway goes first so its pool connections to the benchmark database are closed.
    await stack.gateway.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    ctx.log("stopping the stack");
    await stack.stop();
  }
}

const suite: Suite = {
  name: "gateway",
  description: "neon() and Pool through the local gateway vs pg straight to Postgres",
  run,
};

export default suite;
