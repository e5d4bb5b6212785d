/**
 * Onboarding time: from POST /v1/tenants on the admin host to the first 200 of GET /api/products on
 * the new tenant's own domain, through the real Worker under `wrangler dev` (control plane in its own
 * Postgres database, local provisioner creating a database + role per tenant, migrations, KV
 * projection, then the edge resolving the new host). Tenants are onboarded one after another, as an
 * operator would; `--tenants N` (default 20, `--quick` 5).
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { wranglerVars } from "../../src/cli/project-config.ts";
import { freePort } from "../../src/dev/postgres.ts";
import { ensureControlDatabase } from "../../src/dev/seed.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { generateKey } from "../../src/shared/crypto/secrets.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import {
  type BenchContext,
  type Measurement,
  percentile,
  positiveIntFlag,
  type Suite,
  type SuiteResult,
} from "../lib.ts";
import { startWrangler, stopAll, waitReady } from "../wrangler.ts";

/** Give up on a tenant that is not served this long after its create call returned. */
const FIRST_REQUEST_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 5;

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** An HTTP call with an explicit Host header (Node's fetch drops it; *.localhost does not resolve in Node). */
function send(
  port: number,
  host: string,
  path: string,
  options: { method?: string; token?: string; body?: unknown } = {},
): Promise<Reply> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { host: `${host}:${port}` };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: options.method ?? "GET", agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

const round = (value: number) => Math.round(value * 1000) / 1000;

function summarise(times: readonly number[], wallMs: number): Measurement {
  const sum = times.reduce((total, time) => total + time, 0);
  return {
    iterations: times.length,
    concurrency: 1,
    p50: round(percentile(times, 50)),
    p99: round(percentile(times, 99)),
    mean: round(sum / times.length),
    min: round(Math.min(...times)),
    max: round(Math.max(...times)),
    opsPerSec: Math.round((times.length / wallMs) * 1000 * 100) / 100,
  };
}

interface Onboarded {
  /** POST /v1/tenants → first 200 on the tenant's domain. */
  readonly total: number;
  /** The create call alone (provision + migrate + project, answered 201). */
  readonly create: number;
  /** From the 201 to the first 200 on the domain. */
  readonly firstRequest: number;
  /** GETs needed until the first 200. */
  readonly polls: number;
}

async function onboardOne(port: number, token: string, slug: string): Promise<Onboarded> {
  const domain = `shop.${slug}.localhost`;
  const started = performance.now();
  const created = await send(port, "admin.localhost", "/v1/tenants", {
    method: "POST",
    token,
    body: { slug, region: "local", domains: [domain] },
  });
  const createdAt = performance.now();
  if (created.status !== 201)
    throw new Error(`creating ${slug} answered ${created.status}: ${created.body.slice(0, 300)}`);
  let polls = 0;
  for (;;) {
    polls += 1;
    const response = await send(port, domain, "/api/products");
    if (response.status === 200) {
      if (!response.body.includes('"items"')) throw new Error(`${domain} answered 200 without items`);
      break;
    }
    if (performance.now() - createdAt > FIRST_REQUEST_TIMEOUT_MS) {
      throw new Error(`${domain} not served ${FIRST_REQUEST_TIMEOUT_MS} ms after its create call: ${response.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  const done = performance.now();
  return { total: done - started, create: createdAt - started, firstRequest: done - createdAt, polls };
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const count = positiveIntFlag(ctx, "tenants") ?? (ctx.quick ? 5 : 20);
  if (!Number.isInteger(count)) throw new Error("--tenants must be a whole number");
  ctx.log("starting Postgres and the gateway");
  const stack = await startLocalStack({ gateway: { port: 0 } });
  neonConfig.fetchEndpoint = stack.gateway.url;
  const persist = await mkdtemp(join(tmpdir(), "tenantry-bench-onboarding-"));
  let child: ChildProcess | undefined;
  try {
    const controlUrl = await ensureControlDatabase(stack.postgres.url);
    const vars = wranglerVars();
    const adminSecret = randomBytes(32).toString("hex");
    const [port, inspector] = await Promise.all([freePort(), freePort()]);
    ctx.log(`starting the Worker under wrangler dev (:${port})`);
    child = startWrangler(
      ["--port", String(port), "--inspector-port", String(inspector), "--persist-to", persist],
      {
        NEON_FETCH_ENDPOINT: stack.gateway.url,
        CONTROL_DATABASE_URL: controlUrl,
        LOCAL_PROVISIONER_URL: stack.postgres.url,
        ADMIN_JWT_SECRET: adminSecret,
        JWT_SECRET: randomBytes(32).toString("hex"),
        DB_ENCRYPTION_KEYS: `k1:${generateKey()}`,
        NEON_API_KEY: "",
        DEFAULT_PROVISIONER: "local",
        // Plain domain mapping (served at once), not the fake custom hostnames of `npm run dev`'s .dev.vars.
        CLOUDFLARE_ZONE_ID: "",
        CLOUDFLARE_API_TOKEN: "",
        ALERT_WEBHOOK_URL: "",
        LOG_LEVEL: "warn",
      },
      ctx.log,
    );
    await waitReady(port, child, async () => (await send(port, "admin.localhost", "/healthz")).status === 200);
    const token = await mintAdminToken({
      secret: adminSecret,
      issuer: vars.ADMIN_JWT_ISSUER ?? "",
      audience: vars.ADMIN_JWT_AUDIENCE ?? "",
      sub: "bench",
      scope: ALL_ADMIN_SCOPES,
      ttlSeconds: 3600,
    });
    const listed = await send(port, "admin.localhost", "/v1/tenants?limit=1", { token });
    if (listed.status !== 200) throw new Error(`the admin API answered ${listed.status}: ${listed.body.slice(0, 300)}`);

    // One untimed tenant first: isolate start-up, the gateway's pools and the first KV writes.
    const run = randomBytes(3).toString("hex");
    ctx.log("onboarding 1 warm-up tenant");
    await onboardOne(port, token, `warm-${run}`);

    ctx.log(`onboarding ${count} tenants, one after another`);
    const results: Onboarded[] = [];
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      results.push(await onboardOne(port, token, `bench-${run}-${i + 1}`));
    }
    const wall = performance.now() - started;
    const total = summarise(
      results.map((r) => r.total),
      wall,
    );
    return {
      measurements: {
        "create → first 200 on the tenant's domain": total,
        "POST /v1/tenants (provision, migrate, project)": summarise(
          results.map((r) => r.create),
          wall,
        ),
        "201 → first 200 on the domain": summarise(
          results.map((r) => r.firstRequest),
          wall,
        ),
      },
      derived: {
        tenants: count,
        "onboarding p50 ms": total.p50,
        "onboarding max ms": total.max,
        "onboarding mean ms": total.mean,
        "GETs until the first 200 (max)": Math.max(...results.map((r) => r.polls)),
        "tenants onboarded per minute": Math.round((count / wall) * 60_000 * 10) / 10,
        "warm-up tenants (untimed)": 1,
      },
    };
  } finally {
    if (child) await stopAll([child]);
    agent.destroy();
    await stack.stop();
    await rm(persist, { recursive: true, force: true });
  }
}

const suite: Suite = {
  name: "onboarding",
  description: "POST /v1/tenants → first 200 on the new tenant's domain, real Worker under wrangler dev",
  run,
};
export default suite;
