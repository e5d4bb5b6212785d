/**
 * Baseline for the router benchmark: the same products query as GET /api/products, on one fixed
 * connection string, with no host resolution, no KV, no auth, no middleware. Bench-only.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-http";
import { products } from "../../src/worker/store/schema.ts";

interface BaselineEnv {
  DATABASE_URL: string;
  NEON_FETCH_ENDPOINT: string;
}

export default {
  async fetch(_request: Request, env: BaselineEnv): Promise<Response> {
    if (env.NEON_FETCH_ENDPOINT) neonConfig.fetchEndpoint = env.NEON_FETCH_ENDPOINT;
    const db = drizzle({ client: neon(env.DATABASE_URL) });
    const items = await db
      .select({
        id: products.id,
        sku: products.sku,
        name: products.name,
        description: products.description,
        priceCents: products.priceCents,
        currency: products.currency,
        stock: products.stock,
      })
      .from(products)
      .orderBy(asc(products.id))
      .limit(50);
    return Response.json({ items });
  },
};
