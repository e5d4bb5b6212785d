/**
 * The gateway bench's client: `neon()` where it runs in real use, inside workerd, with workerd's
 * own `fetch` (not Node's undici). POST /run?iterations=N&concurrency=C&endpoint=URL runs
 * `SELECT 1` N times, C in flight, against DATABASE_URL through the `/sql` endpoint URL and
 * answers every query's duration in ms. workerd's clock advances only with I/O, coarsely, so the
 * bench takes throughput from its own wall clock and only percentiles from these. Bench-only.
 */
import { neon, neonConfig } from "@neondatabase/serverless";

interface ClientEnv {
  DATABASE_URL: string;
}

export default {
  async fetch(request: Request, env: ClientEnv): Promise<Response> {
    const params = new URL(request.url).searchParams;
    const iterations = Number(params.get("iterations") ?? "1");
    const concurrency = Number(params.get("concurrency") ?? "1");
    // Requests come one at a time from the bench, so the module-wide setting is safe to change.
    neonConfig.fetchEndpoint = params.get("endpoint") ?? "";
    const sql = neon(env.DATABASE_URL);
    const times: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < iterations) {
        next += 1;
        const started = performance.now();
        const rows = await sql.query("SELECT 1");
        if (rows.length !== 1) throw new Error(`expected 1 row, got ${rows.length}`);
        times.push(performance.now() - started);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, iterations)) }, worker));
    return Response.json({ times });
  },
};
