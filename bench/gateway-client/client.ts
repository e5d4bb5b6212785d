/**
 * Drives bench/gateway-client/worker.ts: bundled by wrangler as a deploy would, served by miniflare
 * (workerd in a process of its own), one POST per timed run, so the runs' queries are all issued
 * by workerd's `fetch` and the bench process only waits. Throughput comes from this process's wall
 * clock around the whole run (one extra request per run, negligible next to thousands of queries).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import type { Timed } from "../lib.ts";
import { bundleWorker } from "../wrangler.ts";

export interface WorkerdClient {
  /** `neon()` inside workerd: `iterations` × `SELECT 1`, `concurrency` in flight, via `endpoint`. */
  run(endpoint: string, iterations: number, concurrency: number): Promise<Timed>;
  close(): Promise<void>;
}

export async function startWorkerdClient(databaseUrl: string): Promise<WorkerdClient> {
  const outdir = await mkdtemp(join(tmpdir(), "tenantry-bench-gateway-client-"));
  try {
    const config = join(dirname(fileURLToPath(import.meta.url)), "wrangler.toml");
    const script = await bundleWorker(config, outdir);
    const worker = new Miniflare(
      convertV4MiniflareOptions({
        modules: true,
        modulesRoot: dirname(script),
        scriptPath: script,
        compatibilityDate: "2026-10-20",
        bindings: { DATABASE_URL: databaseUrl },
      }),
    );
    await worker.ready;
    return {
      async run(endpoint, iterations, concurrency) {
        const query = new URLSearchParams({
          endpoint,
          iterations: String(iterations),
          concurrency: String(concurrency),
        });
        const started = performance.now();
        const response = await worker.dispatchFetch(`http://bench.localhost/run?${query}`, { method: "POST" });
        const text = await response.text();
        const wallMs = performance.now() - started;
        const times = response.status === 200 ? (JSON.parse(text) as { times?: unknown }).times : undefined;
        if (!Array.isArray(times) || times.length !== iterations) {
          throw new Error(`the workerd client answered ${response.status}: ${text.slice(0, 200)}`);
        }
        return { times: times as number[], wallMs };
      },
      async close() {
        await worker.dispose();
        await rm(outdir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(outdir, { recursive: true, force: true });
    throw error;
  }
}
