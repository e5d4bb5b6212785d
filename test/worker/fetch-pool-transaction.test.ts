/**
 * Inside workerd: a route that takes a `Pool` per request (`tenantPool`) and runs an interactive
 * transaction with drizzle's `neon-serverless` driver, `SELECT … FOR UPDATE` then decide, against
 * embedded Postgres through the gateway's WebSocket endpoint. The route is a test-only Hono app;
 * the database is a throwaway one so no seeded tenant is touched.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-serverless";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { configureEndpoint } from "../../src/worker/tenant-db/middleware.ts";
import { tenantPool } from "../../src/worker/tenant-db/pool.ts";

const database = `pool_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
let url: string;

class SoldOut extends Error {}

/** Reserves one unit of `sku`: lock the row, decide on what was read, then write. */
const app = new Hono<{ Bindings: Env }>().post("/reserve/:sku", async (c) => {
  const pool = tenantPool(c.env, url);
  try {
    const db = drizzle({ client: pool });
    const sku = c.req.param("sku");
    const remaining = await db.transaction(async (tx) => {
      // Written first, so that refusing below has something to roll back.
      await tx.execute(sql`INSERT INTO reservations (sku) VALUES (${sku})`);
      const { rows } = await tx.execute<{ qty: number }>(sql`SELECT qty FROM stock WHERE sku = ${sku} FOR UPDATE`);
      const qty = rows[0]?.qty ?? 0;
      if (qty < 1) throw new SoldOut();
      // Held long enough that a concurrent request must wait on the row lock.
      await tx.execute(sql`SELECT pg_sleep(0.2)`);
      await tx.execute(sql`UPDATE stock SET qty = qty - 1 WHERE sku = ${sku}`);
      return qty - 1;
    });
    return c.json({ remaining });
  } catch (error) {
    if (error instanceof SoldOut) return c.json({ code: "sold_out" }, 409);
    throw error;
  } finally {
    c.executionCtx.waitUntil(pool.end());
  }
});

async function reserve(sku: string): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await app.request(`/reserve/${sku}`, { method: "POST" }, env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

beforeAll(async () => {
  configureEndpoint(env.NEON_FETCH_ENDPOINT);
  const admin = neon(inject("adminUrl"));
  await admin.query(`CREATE DATABASE ${database}`);
  const target = new URL(inject("adminUrl"));
  target.pathname = `/${database}`;
  url = target.toString();
  const db = neon(url);
  await db.query("CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL)");
  await db.query("CREATE TABLE reservations (id serial PRIMARY KEY, sku text NOT NULL)");
  await db.query("INSERT INTO stock VALUES ('LAST', 1), ('MANY', 3)");
});

afterAll(async () => {
  await neon(inject("adminUrl")).query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

describe("a Worker route with a Pool per request", () => {
  it("runs an interactive transaction through the gateway", async () => {
    const response = await reserve("MANY");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ remaining: 2 });
  });

  it("serialises two requests contending for the last unit: one wins, one is refused", async () => {
    const answers = await Promise.all([reserve("LAST"), reserve("LAST")]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    const rows = await neon(url).query(
      "SELECT (SELECT qty FROM stock WHERE sku = 'LAST') AS qty, count(*)::int AS n FROM reservations WHERE sku = 'LAST'",
    );
    expect(rows).toEqual([{ qty: 0, n: 1 }]);
  });

  it("rolls the reservation written before the decision back when the route refuses", async () => {
    const response = await reserve("LAST");
    expect(response.status).toBe(409);
    const rows = await neon(url).query("SELECT count(*)::int AS n FROM reservations WHERE sku = 'LAST'");
    expect(rows).toEqual([{ n: 1 }]);
  });
});
