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
import { convertV4MiniflareOptions, type Request as MfRequest, Response as MfResponse, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bundleWorker } from "../../../bench/wrangler.ts";
import { wranglerConfigPath, wranglerVars } from "../../../src/cli/project-config.ts";
import type { ControlDeps, KvStore } from "../../../src/control/tenants/deps.ts";
import { useGatewayFetch } from "../../../src/dev/gateway/node-fetch.ts";
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
  /** Any request on the Worker with a Host header; the answer's headers too. */
  send(host: string, path: string, init?: SendInit): Promise<Answer>;
  stop(): Promise<void>;
}

export interface SendInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Answers the Worker's outbound requests for one origin (a fake of an external API); others pass. */
export type Outbound = (url: URL) => Response | undefined;

function send(port: number, host: string, path: string, init: SendInit = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: init.method ?? "GET",
        headers: { ...init.headers, host: `${host}:${port}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

export async function serveWorker(options: {
  postgresUrl: string;
  gatewayUrl: string;
  controlName: string;
  /** Vars on top of wrangler.toml's (e.g. the Cloudflare Access settings). */
  vars?: Record<string, string>;
  outbound?: Outbound;
}): Promise<ServedWorker> {
  neonConfig.fetchEndpoint = options.gatewayUrl;
  useGatewayFetch(neonConfig, options.gatewayUrl);
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
        ...options.vars,
      },
      ...(options.outbound ? { outboundService: outboundVia(options.outbound) } : {}),
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
    get: (host, path) => send(port, host, path),
    send: (host, path, init) => send(port, host, path, init),
    async stop() {
      await mf.dispose();
      await rm(outdir, { recursive: true, force: true });
    },
  };
}

/** Miniflare's outbound hook: the fake's answer when it has one, the real network (loopback) otherwise. */
function outboundVia(fake: Outbound) {
  return async (req: MfRequest): Promise<MfResponse> => {
    const faked = fake(new URL(req.url));
    if (faked) return new MfResponse(await faked.text(), { status: faked.status, headers: [...faked.headers] });
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    const real = await fetch(req.url, { method: req.method, headers: [...req.headers], body });
    return new MfResponse(await real.arrayBuffer(), { status: real.status, headers: [...real.headers] });
  };
}
