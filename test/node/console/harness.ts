/**
 * The Worker under a browser: bundled once by wrangler (as a deploy would) and served by miniflare on
 * a free port with wrangler.toml's KV, R2 and Queue bindings, against the suite's embedded Postgres
 * through the gateway, with its own control database and fresh secrets. Tenants are onboarded with
 * the control plane straight into the Worker's KV namespace. Mirrors bench/suites/router.ts.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bundleWorker } from "../../../bench/wrangler.ts";
import { wranglerConfigPath, wranglerVars } from "../../../src/cli/project-config.ts";
import type { ControlDeps, KvStore } from "../../../src/control/tenants/deps.ts";
import { ensureControlDatabase, seedDeps } from "../../../src/dev/seed.ts";
import { generateKey } from "../../../src/shared/crypto/secrets.ts";
import { mintAdminToken } from "../../../src/shared/tokens.ts";

export interface ServedWorker {
  readonly port: number;
  readonly adminOrigin: string;
  readonly deps: ControlDeps;
  token(sub: string, scope: string): Promise<string>;
  /** GET on the Worker with a Host header (Node cannot resolve *.localhost). */
  get(host: string, path: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

export async function serveWorker(options: {
  postgresUrl: string;
  gatewayUrl: string;
  controlName: string;
}): Promise<ServedWorker> {
  neonConfig.fetchEndpoint = options.gatewayUrl;
  const controlUrl = await ensureControlDatabase(options.postgresUrl, options.controlName);
  const outdir = await mkdtemp(join(tmpdir(), "tenantry-console-"));
  const script = await bundleWorker(wranglerConfigPath, outdir);
  const secrets = {
    JWT_SECRET: randomBytes(32).toString("hex"),
    ADMIN_JWT_SECRET: randomBytes(32).toString("hex"),
    CONSOLE_SESSION_SECRET: randomBytes(32).toString("hex"),
    EXPORT_SIGNING_KEY: randomBytes(32).toString("hex"),
    DB_ENCRYPTION_KEYS: `k1:${generateKey()}`,
    CONTROL_DATABASE_URL: controlUrl,
    LOCAL_PROVISIONER_URL: options.postgresUrl,
    NEON_API_KEY: "",
  };
  const { modulesRules: _rules, ...workerOptions } =
    unstable_getMiniflareWorkerOptions(wranglerConfigPath).workerOptions;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      host: "127.0.0.1",
      port: 0,
      modules: true,
      modulesRoot: dirname(script),
      scriptPath: script,
      bindings: {
        ...(workerOptions.bindings as Record<string, string> | undefined),
        ...secrets,
        NEON_FETCH_ENDPOINT: options.gatewayUrl,
        LOG_LEVEL: "warn",
      },
    }),
  );
  const port = Number((await mf.ready).port);
  const kv = (await mf.getKVNamespace("TENANTS")) as unknown as KvStore;
  const vars = wranglerVars();
  const deps = seedDeps(options.postgresUrl, controlUrl, secrets.DB_ENCRYPTION_KEYS, kv, "test:console");
  return {
    port,
    adminOrigin: `http://${vars.ADMIN_HOST}:${port}`,
    deps,
    token: (sub, scope) =>
      mintAdminToken({
        secret: secrets.ADMIN_JWT_SECRET,
        issuer: vars.ADMIN_JWT_ISSUER ?? "",
        audience: vars.ADMIN_JWT_AUDIENCE ?? "",
        sub,
        scope,
      }),
    get: (host, path) =>
      new Promise((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, headers: { host: `${host}:${port}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
      }),
    async stop() {
      await mf.dispose();
      await rm(outdir, { recursive: true, force: true });
    },
  };
}
