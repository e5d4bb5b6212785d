/**
 * `npm run db`: a persistent embedded Postgres and the gateway, for development.
 * Prints the URLs to use and runs until Ctrl-C, then drains and stops both.
 *
 * Environment: TENANTRY_DATA_DIR (default .tenantry/postgres), TENANTRY_PG_PORT (default 54320),
 * GATEWAY_PORT (default 4444), DATABASE_URL (use that server instead of embedded Postgres).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startLocalStack } from "./stack.ts";

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string" },
    "pg-port": { type: "string" },
    "gateway-port": { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log(`usage: npm run db -- [--data-dir DIR] [--pg-port N] [--gateway-port N] [--verbose]

Starts embedded Postgres 17 (data kept in DIR, default .tenantry/postgres) and the
Neon-compatible gateway (HTTP http://127.0.0.1:4444/sql, WebSocket 127.0.0.1:4444/v2).
Ctrl-C stops both.`);
  process.exit(0);
}

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
    console.error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return parsed;
}

const dataDir = resolve(values["data-dir"] ?? process.env.TENANTRY_DATA_DIR ?? join(".tenantry", "postgres"), "data");
const verbose = values.verbose ?? false;
const stack = await startLocalStack({
  dataDir,
  postgresPort: port(values["pg-port"] ?? process.env.TENANTRY_PG_PORT, 54320, "--pg-port"),
  gateway: {
    port: port(values["gateway-port"] ?? process.env.GATEWAY_PORT, 4444, "--gateway-port"),
    ...(verbose ? { onLog: (line: string) => console.log(`[gateway] ${line}`) } : {}),
  },
  ...(verbose ? { onLog: (line: string) => console.log(`[postgres] ${line}`) } : {}),
});

console.log(`Postgres       ${stack.postgres.url}${process.env.DATABASE_URL ? "" : `  (data in ${dataDir})`}
SQL-over-HTTP  ${stack.gateway.url}
WebSocket      ws://${stack.gateway.wsProxy}?address=HOST:PORT

Point the Neon driver at the gateway:
  import { neon, neonConfig } from "@neondatabase/serverless";
  neonConfig.fetchEndpoint = "${stack.gateway.url}";
  // Node code in this repo: also useGatewayFetch(neonConfig, "${stack.gateway.url}")
  // from src/dev/gateway/node-fetch.ts (node:http keep-alive, faster than Node's fetch).
  const sql = neon("${stack.postgres.url}");

For Pool and Client sessions (see docs/local-stack.md):
  neonConfig.wsProxy = "${stack.gateway.wsProxy}";
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;

Ctrl-C to stop.`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: draining the gateway and stopping Postgres…`);
  await stack.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
