/**
 * The edge router's cost: GET /api/products through the full Worker (host → isolate cache/KV →
 * decrypt → drizzle(neon) → gateway → Postgres) against a baseline Worker running the same query on a
 * fixed connection string with nothing else, both in workerd through miniflare's API, in one run.
 * Both are bundled once by wrangler (as a deploy would) and served by miniflare directly: no
 * `wrangler dev` processes to spawn and poll, no proxy in front of either Worker, and the KV records
 * are written straight into the router's namespace. Also counts KV reads per 1,000 warm requests
 * (from the router's Server-Timing `resolve` entry).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { projectRoot, wranglerConfigPath } from "../../src/cli/project-config.ts";
import { DEMO_TENANTS, memoryKv, seedDemoTenants } from "../../src/dev/seed.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { generateKey } from "../../src/shared/crypto/secrets.ts";
import { type BenchContext, measure, positiveIntFlag, ratio, type Suite, type SuiteResult } from "../lib.ts";
import { bundleWorker } from "../wrangler.ts";

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** GET with an explicit Host header (Node's fetch drops it, and *.localhost does not resolve in Node). */
function get(port: number, host: string, path: string): Promise<{ status: number; timing: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent, headers: { host: `${host}:${port}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          timing: String(res.headers["server-timing"] ?? ""),
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const plan = ctx.quick ? { iterations: 300, warmup: 50 } : { iterations: 3_000, warmup: 300 };
  const concurrency = positiveIntFlag(ctx, "concurrency") ?? 4;
  ctx.log("starting Postgres and the gateway");
  const stack = await startLocalStack({ gateway: { port: 0 } });
  neonConfig.fetchEndpoint = stack.gateway.url;
  const outdir = await mkdtemp(join(tmpdir(), "tenantry-bench-router-"));
  const workers: Miniflare[] = [];
  try {
    const keys = `k1:${generateKey()}`;
    const acme = DEMO_TENANTS.filter((t) => t.slug === "acme");
    const [seeded] = await seedDemoTenants({
      adminUrl: stack.postgres.url,
      encryptionKeys: keys,
      kv: memoryKv(),
      tenants: acme,
    });
    if (!seeded) throw new Error("seeding acme failed");

    ctx.log("bundling the router and the baseline Worker");
    const baselineConfig = join(projectRoot, "bench", "baseline", "wrangler.toml");
    const [routerScript, baselineScript] = await Promise.all([
      bundleWorker(wranglerConfigPath, join(outdir, "router")),
      bundleWorker(baselineConfig, join(outdir, "baseline")),
    ]);
    const common = { NEON_FETCH_ENDPOINT: stack.gateway.url, LOG_LEVEL: "warn" };
    // wrangler.toml's bindings and vars, as `wrangler dev` would give them; the secrets on top.
    // (Module rules only matter to unbundled sources, and miniflare 5 cannot convert them.)
    const { modulesRules: _routerRules, ...workerOptions } =
      unstable_getMiniflareWorkerOptions(wranglerConfigPath).workerOptions;
    // Miniflare 5 takes the v4 option shape wrangler produces through its converter, as wrangler does.
    const router = new Miniflare(
      convertV4MiniflareOptions({
        ...workerOptions,
        host: "127.0.0.1",
        port: 0,
        modules: true,
        modulesRoot: dirname(routerScript),
        scriptPath: routerScript,
        bindings: {
          ...(workerOptions.bindings as Record<string, string> | undefined),
          ...common,
          JWT_SECRET: randomBytes(32).toString("hex"),
          DB_ENCRYPTION_KEYS: keys,
        },
      }),
    );
    workers.push(router);
    const { modulesRules: _baselineRules, ...baselineOptions } =
      unstable_getMiniflareWorkerOptions(baselineConfig).workerOptions;
    const baseline = new Miniflare(
      convertV4MiniflareOptions({
        ...baselineOptions,
        host: "127.0.0.1",
        port: 0,
        modules: true,
        modulesRoot: dirname(baselineScript),
        scriptPath: baselineScript,
        bindings: { ...common, DATABASE_URL: seeded.url },
      }),
    );
    workers.push(baseline);
    const tenants = await router.getKVNamespace("TENANTS");
    for (const { key, value } of seeded.kv) await tenants.put(key, value);
    const [routerPort, baselinePort] = (await Promise.all([router.ready, baseline.ready])).map((url) =>
      Number(url.port),
    );
    if (!routerPort || !baselinePort) throw new Error("miniflare did not report its ports");
    ctx.log(`router on :${routerPort}, baseline Worker on :${baselinePort} (miniflare)`);

    const check =
      (what: string) =>
      <R extends { status: number; body: string }>(response: R): R => {
        if (response.status !== 200 || !response.body.includes("ACME-ANVIL")) {
          throw new Error(`${what} answered ${response.status}: ${response.body.slice(0, 200)}`);
        }
        return response;
      };
    let kvReads = 0;
    let routerRequests = 0;
    const viaRouter = () =>
      get(routerPort, "acme.localhost", "/api/products")
        .then(check("router"))
        .then((response) => {
          routerRequests += 1;
          if (response.timing.includes("resolve;") && response.timing.includes('desc="kv"')) kvReads += 1;
        });
    const viaBaseline = () => get(baselinePort, "localhost", "/").then(check("baseline"));

    // Warm both, then alternate rounds so drift on a shared 2-core machine hits both alike.
    ctx.log(`warming up (${plan.warmup} requests each)`);
    await measure(viaBaseline, { iterations: plan.warmup, concurrency });
    await measure(viaRouter, { iterations: plan.warmup, concurrency });
    kvReads = 0;
    routerRequests = 0;
    const half = Math.floor(plan.iterations / 2);
    ctx.log(`measuring ${plan.iterations} requests each, ${concurrency} in flight`);
    const b1 = await measure(viaBaseline, { iterations: half, concurrency });
    const r1 = await measure(viaRouter, { iterations: half, concurrency });
    const b2 = await measure(viaBaseline, { iterations: half, concurrency });
    const r2 = await measure(viaRouter, { iterations: half, concurrency });
    const pick = (a: typeof b1, b: typeof b1) => (a.opsPerSec >= b.opsPerSec ? a : b);
    const routerBest = pick(r1, r2);
    const baselineBest = pick(b1, b2);
    const mean = (a: number, b: number) => Math.round((a + b) / 2);
    const routerRps = mean(r1.opsPerSec, r2.opsPerSec);
    const baselineRps = mean(b1.opsPerSec, b2.opsPerSec);
    return {
      measurements: {
        "GET /api/products · router (round 1)": r1,
        "GET /api/products · router (round 2)": r2,
        "same query · baseline Worker (round 1)": b1,
        "same query · baseline Worker (round 2)": b2,
      },
      derived: {
        "router req/s (mean of rounds)": routerRps,
        "baseline req/s (mean of rounds)": baselineRps,
        "router/baseline throughput": ratio(routerRps, baselineRps),
        "router p50 / baseline p50 (best rounds)": ratio(routerBest.p50, baselineBest.p50),
        "KV reads per 1,000 warm requests": Math.round((kvReads / Math.max(1, routerRequests)) * 1000 * 100) / 100,
        "warm router requests counted": routerRequests,
        concurrency,
      },
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.dispose()));
    agent.destroy();
    await stack.stop();
    await rm(outdir, { recursive: true, force: true });
  }
}

const suite: Suite = {
  name: "router",
  description: "GET /api/products through the full edge router vs a baseline Worker (miniflare)",
  run,
};
export default suite;
