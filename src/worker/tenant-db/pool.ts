/**
 * A `Pool` on one tenant's database, for code that needs a session rather than `drizzle(neon(url))`
 * over HTTP (middleware.ts): an interactive transaction that reads, decides and writes
 * (`SELECT … FOR UPDATE`), `LISTEN`, or `COPY`. drizzle's `neon-serverless` driver takes it
 * (`drizzle({ client: pool })`) and runs `db.transaction` interactively on it.
 *
 * A Worker may not carry I/O objects from one request to the next, so the pool is made per request
 * and ended with it (Neon's guidance for Workers):
 *
 *   const pool = tenantPool(c.env, url);
 *   try { await drizzle({ client: pool }).transaction(async (tx) => { … }); }
 *   finally { c.executionCtx.waitUntil(pool.end()); }
 *
 * Locally the WebSocket goes to the gateway's `/v2` endpoint (configured with `fetchEndpoint`);
 * in production, with neither variable set, it goes to Neon.
 */
import { Pool } from "@neondatabase/serverless";
import type { LocalNeonVars } from "../../shared/neon-local.ts";
import { configureEndpoint } from "./middleware.ts";

export type PoolEnv = Pick<Env, "NEON_FETCH_ENDPOINT" | "DB_TIMEOUT_MS"> & LocalNeonVars;

export function tenantPool(env: PoolEnv, connectionString: string): Pool {
  configureEndpoint(env.NEON_FETCH_ENDPOINT, env.NEON_WS_PROXY);
  const pool = new Pool({ connectionString, connectionTimeoutMillis: Number(env.DB_TIMEOUT_MS) || 10_000 });
  // An idle connection whose server went away: the pool drops it and the next query opens another.
  // Unheard, the event would throw out of the isolate.
  pool.on("error", () => {});
  return pool;
}
