/**
 * `npm run dev`: the whole product locally, in one command.
 *
 * embedded Postgres (data in .tenantry/postgres) → gateway on 127.0.0.1:4444 → demo tenants acme and
 * globex (own database, own role, own products, encrypted KV records) → `wrangler dev` on
 * 127.0.0.1:8787. Beside them the fake Cloudflare API on 127.0.0.1:4445 (custom hostnames turn active
 * TENANTRY_DOMAIN_ACTIVATE_MS, default 10 s, after creation; names under `.invalid` never do) and an
 * alert webhook on 127.0.0.1:4446 that prints what it receives; .dev.vars points the Worker at both.
 * Idempotent: a second run reuses the data and rewrites the KV records (the fake API starts empty, so
 * custom domains of an earlier run turn `deleted`). Ctrl-C stops wrangler, then the rest.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { getPlatformProxy } from "wrangler";
import { projectRoot, readDevVars, WRANGLER_ENV, wranglerConfigPath, wranglerVars } from "../cli/project-config.ts";
import type { KvStore } from "../control/tenants/deps.ts";
import { reconcileAll } from "../control/tenants/reconcile.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken, mintTenantToken } from "../shared/tokens.ts";
import { startAlertSink } from "./alert-sink.ts";
import { ensureDevVars } from "./dev-vars.ts";
import { startFakeCloudflareApi } from "./fake-cloudflare/server.ts";
import { useGatewayFetch } from "./gateway/node-fetch.ts";
import { DEMO_TENANTS, ensureControlDatabase, type SeededTenant, seedDemoTenants, seedDeps } from "./seed.ts";
import { startLocalStack } from "./stack.ts";

// Keep wrangler offline and quiet even when started without the npm script.
Object.assign(process.env, WRANGLER_ENV);

const WORKER_PORT = Number(process.env.PORT ?? 8787);
const GATEWAY_PORT = Number(process.env.GATEWAY_PORT ?? 4444);
const PG_PORT = Number(process.env.TENANTRY_PG_PORT ?? 54320);
const CLOUDFLARE_PORT = Number(process.env.TENANTRY_CLOUDFLARE_PORT ?? 4445);
const ALERT_PORT = Number(process.env.TENANTRY_ALERT_PORT ?? 4446);
const ACTIVATE_AFTER_MS = Number(process.env.TENANTRY_DOMAIN_ACTIVATE_MS ?? 10_000);
const dataDir = join(process.env.TENANTRY_DATA_DIR ?? join(projectRoot, ".tenantry", "postgres"), "data");

const step = (text: string) => console.log(`• ${text}`);

async function waitForWorker(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev did not answer ${url} within ${timeoutMs} ms`);
}

step(
  `starting Postgres${process.env.DATABASE_URL ? " (DATABASE_URL)" : ` (embedded, data in ${dataDir})`} and the gateway`,
);
const stack = await startLocalStack({ dataDir, postgresPort: PG_PORT, gateway: { port: GATEWAY_PORT } });
neonConfig.fetchEndpoint = stack.gateway.url;
useGatewayFetch(neonConfig, stack.gateway.url);
const cloudflare = await startFakeCloudflareApi({ port: CLOUDFLARE_PORT, activateAfterMs: ACTIVATE_AFTER_MS });
const alerts = await startAlertSink(ALERT_PORT);
let wrangler: ChildProcess | undefined;
let stopping = false;

async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (wrangler && wrangler.exitCode === null) {
      const exited = new Promise((resolve) => wrangler?.once("exit", resolve));
      wrangler.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    }
    await cloudflare.close().catch(() => undefined);
    await alerts.close().catch(() => undefined);
    await stack.stop().catch(() => undefined);
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  const controlUrl = await ensureControlDatabase(stack.postgres.url);
  const ownWebhook = readDevVars().ALERT_WEBHOOK_URL;
  const vars = ensureDevVars({
    NEON_FETCH_ENDPOINT: stack.gateway.url,
    CONTROL_DATABASE_URL: controlUrl,
    LOCAL_PROVISIONER_URL: stack.postgres.url,
    CLOUDFLARE_API_URL: cloudflare.url,
    CLOUDFLARE_ZONE_ID: "zone-dev",
    CLOUDFLARE_API_TOKEN: cloudflare.apiToken,
    // An operator's own webhook in .dev.vars is kept; otherwise (or one of an earlier run) the sink.
    ALERT_WEBHOOK_URL: ownWebhook && !ownWebhook.startsWith("http://127.0.0.1:") ? ownWebhook : alerts.url,
  });
  const encryptionKeys = vars.DB_ENCRYPTION_KEYS as string;

  step(`onboarding demo tenants through the control plane: ${DEMO_TENANTS.map((t) => t.slug).join(", ")}`);
  // The seed writes straight into the local KV that wrangler dev will serve from.
  const proxy = await getPlatformProxy<{ TENANTS: KvStore }>({
    configPath: wranglerConfigPath,
    remoteBindings: false,
  });
  let seeded: SeededTenant[];
  try {
    seeded = await seedDemoTenants({ adminUrl: stack.postgres.url, controlUrl, encryptionKeys, kv: proxy.env.TENANTS });
    const report = await reconcileAll(seedDeps(stack.postgres.url, controlUrl, encryptionKeys, proxy.env.TENANTS));
    step(
      `KV reconciled with the control database: ${report.checked} records, ${report.missing} missing, ${report.stale} stale, ${report.orphan} orphan`,
    );
  } finally {
    await proxy.dispose();
  }

  step(`starting wrangler dev on http://127.0.0.1:${WORKER_PORT}`);
  wrangler = spawn(
    process.execPath,
    [
      join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js"),
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(WORKER_PORT),
      "--test-scheduled",
    ],
    { cwd: projectRoot, env: { ...process.env, ...WRANGLER_ENV }, stdio: ["ignore", "inherit", "inherit"] },
  );
  wrangler.on("exit", (code) => {
    if (!stopping) {
      console.error(`wrangler dev exited (${code ?? "signal"}); stopping.`);
      void stop(code ?? 1);
    }
  });
  await waitForWorker(`http://127.0.0.1:${WORKER_PORT}/healthz`, wrangler, 60_000);

  const {
    JWT_ISSUER = "",
    JWT_AUDIENCE = "",
    ADMIN_HOST = "admin.localhost",
    ADMIN_JWT_ISSUER = "",
    ADMIN_JWT_AUDIENCE = "",
  } = wranglerVars();
  const adminToken = await mintAdminToken({
    secret: vars.ADMIN_JWT_SECRET as string,
    issuer: ADMIN_JWT_ISSUER,
    audience: ADMIN_JWT_AUDIENCE,
    sub: "dev@localhost",
    scope: ALL_ADMIN_SCOPES,
    ttlSeconds: 86_400,
  });
  const tokens = await Promise.all(
    seeded.map((t) =>
      mintTenantToken({
        secret: vars.JWT_SECRET as string,
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        tenant: t.slug,
        sub: "alice",
        ttlSeconds: 86_400,
      }),
    ),
  );
  const [acmeToken, globexToken] = tokens;
  const base = `:${WORKER_PORT}`;
  console.log(`
Tenantry is running.
  Worker    http://127.0.0.1${base}   (tenants: ${seeded.map((t) => `http://${t.kv.find((e) => e.key.startsWith("host:"))?.key.slice(5) ?? t.slug}${base}`).join(", ")})
  Gateway   ${stack.gateway.url}
  Cloudflare ${cloudflare.url}   (fake API: custom hostnames active ${ACTIVATE_AFTER_MS / 1000} s after creation)
  Alerts    ${vars.ALERT_WEBHOOK_URL}
  Postgres  ${stack.postgres.url.replace(/:[^:@/]+@/, ":****@")}

Operator console: http://${ADMIN_HOST}${base}/  (open it in a browser; *.localhost is this machine)
  Sign in with this admin token (every scope, valid 24 h; mint more with: npx tenantry token --admin | tail -1):
  ${adminToken}

Try it (tokens are valid for 24 h; mint more with: npx tenantry token --tenant acme --sub alice):
  curl http://acme.localhost${base}/api/products
  curl http://globex.localhost${base}/api/products
  export ACME_TOKEN=${acmeToken}
  export GLOBEX_TOKEN=${globexToken}
  curl -X POST -H "Authorization: Bearer $ACME_TOKEN" http://acme.localhost${base}/api/carts
  curl -H "Authorization: Bearer $ACME_TOKEN" http://globex.localhost${base}/api/carts/<cart id>   # 403 tenant_mismatch
  curl -H "Authorization: Bearer $GLOBEX_TOKEN" http://globex.localhost${base}/api/carts/<cart id>  # 404: acme's cart is not in globex's database
  npx tenantry domains add acme shop.acmecorp.localhost    # then: npx tenantry domains status acme

Ctrl-C to stop.`);
} catch (error) {
  console.error(`npm run dev failed: ${error instanceof Error ? error.message : String(error)}`);
  await stop(1);
}
