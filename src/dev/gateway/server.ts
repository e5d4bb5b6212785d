/**
 * A Neon-compatible SQL-over-HTTP gateway for local development and tests (dev-only).
 *
 * It speaks what `@neondatabase/serverless` `neon()` sends (POST /sql, see NEON-HTTP.md) and runs
 * each request on a real Postgres through pipelined connections (pools.ts), so Worker code is
 * identical in production, in `wrangler dev` and in tests. User, password and database come from the connection string the
 * client sends and are checked by Postgres itself. The same port serves Neon's WebSocket protocol
 * on `/v2` for `Pool` and `Client` sessions (ws-proxy.ts). Browsers are kept out of both
 * (browser-policy.ts): the
 * gateway runs any SQL it is given, so only loopback hosts and allowed origins reach it.
 * This file is the routing and the server's lifecycle; one /sql request is sql-handler.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type BrowserPolicy, browserPolicy, checkBrowserAccess, parseOriginList } from "./browser-policy.ts";
import { InFlight } from "./drain.ts";
import { type PoolLimits, PoolManager, type PoolStats } from "./pools.ts";
import type { Target } from "./protocol.ts";
import { send } from "./responses.ts";
import { classify, handleSql, type SqlHandlerConfig } from "./sql-handler.ts";
import { TargetCache } from "./target-cache.ts";
import { WS_PATH } from "./ws-handshake.ts";
import { attachWebSocketProxy, type WebSocketProxyOptions } from "./ws-proxy.ts";

export interface GatewayOptions extends Partial<PoolLimits>, WebSocketProxyOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** Listen port; default 4444, 0 for any free port. */
  readonly port?: number;
  /** Largest request body accepted, in bytes; default 64 MiB (Neon's documented cap). */
  readonly maxBodyBytes?: number;
  /** Largest response produced, in bytes; default 64 MiB. */
  readonly maxResponseBytes?: number;
  /** Extra Postgres hosts to forward to besides loopback, or "any". */
  readonly allowedHosts?: readonly string[] | "any";
  /**
   * Browser origins granted CORS access (exact `scheme://host[:port]`). Default: the comma-separated
   * `GATEWAY_ALLOWED_ORIGINS`, else none: no CORS headers, and other origins are refused.
   */
  readonly allowedOrigins?: readonly string[];
  /** How long `close()` waits for in-flight requests before cutting them; default 10 s. */
  readonly drainTimeoutMs?: number;
  /** One line per request and per failure (never a password or SQL text). */
  readonly onLog?: (line: string) => void;
}

export interface Gateway {
  /** The URL to give `neonConfig.fetchEndpoint`, e.g. `http://127.0.0.1:4444/sql`. */
  readonly url: string;
  /** The value to give `neonConfig.wsProxy`, e.g. `127.0.0.1:4444/v2`. */
  readonly wsProxy: string;
  readonly port: number;
  stats(): PoolStats & { readonly inFlight: number; readonly requests: number; readonly sessions: number };
  /** Stops accepting, lets in-flight queries finish (up to the drain timeout), closes pools. */
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

interface Router {
  readonly sql: SqlHandlerConfig;
  readonly policy: BrowserPolicy;
  readonly inFlight: InFlight;
  readonly log: (line: string) => void;
}

async function route(router: Router, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? "/").split("?")[0];
  const access = checkBrowserAccess(router.policy, request.headers.host, request.headers.origin);
  if (!access.ok) {
    // No CORS headers: the page that sent this cannot even read the refusal.
    send(response, 403, { message: `refused: ${access.reason}`, code: "28000" }, { connection: "close" });
    router.log(`${request.method} ${path} 403 ${access.reason}`);
    return;
  }
  const cors = access.corsHeaders;
  if (request.method === "OPTIONS") {
    response.writeHead(204, { allow: "POST, OPTIONS", ...cors }).end();
    return;
  }
  if (path === "/healthz" && request.method === "GET") {
    send(
      response,
      200,
      { ok: !router.inFlight.draining, inFlight: router.inFlight.active, ...router.sql.pools.stats() },
      cors,
    );
    return;
  }
  if (path === WS_PATH) {
    const message = `${WS_PATH} is a WebSocket endpoint: upgrade to websocket`;
    send(response, 426, { message, code: "08P01" }, { upgrade: "websocket", ...cors });
    return;
  }
  if (path !== "/sql") {
    const message = `no route ${request.method} ${path}: the gateway serves POST /sql`;
    send(response, 404, { message, code: "08P01" }, cors);
    return;
  }
  if (request.method !== "POST") {
    send(response, 405, { message: "use POST for /sql", code: "08P01" }, { allow: "POST, OPTIONS", ...cors });
    return;
  }
  if (router.inFlight.draining) {
    send(response, 503, { message: "the gateway is shutting down", code: "57P01" }, { connection: "close", ...cors });
    return;
  }
  await serveSql(router, request, response, cors);
}

async function serveSql(
  router: Router,
  request: IncomingMessage,
  response: ServerResponse,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  const started = performance.now();
  const done = router.inFlight.start();
  let target: Target | undefined;
  try {
    const json = await handleSql(router.sql, request, (known) => {
      target = known;
    });
    send(response, 200, json, cors);
    router.log(`POST /sql 200 ${target?.label ?? "?"} ${(performance.now() - started).toFixed(1)}ms`);
  } catch (error) {
    const { status, body } = classify(error, target);
    // After an oversized body the rest of the stream is unread: close rather than reuse the socket.
    send(response, status, body, status === 413 ? { connection: "close", ...cors } : cors);
    const ms = (performance.now() - started).toFixed(1);
    router.log(`POST /sql ${status} ${target?.label ?? "?"} ${body.code ?? ""} ${ms}ms`);
  } finally {
    done();
  }
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.onLog ?? (() => {});
  const pools = new PoolManager({
    maxPerPool: options.maxPerPool ?? 10,
    maxTotal: options.maxTotal ?? 100,
    idleMs: options.idleMs ?? 30_000,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 10_000,
    statementTimeoutMs: options.statementTimeoutMs,
  });
  const router: Router = {
    sql: {
      pools,
      targets: new TargetCache(),
      allowed:
        options.allowedHosts === "any"
          ? "any"
          : new Set((options.allowedHosts ?? []).map((host) => host.toLowerCase())),
      maxBodyBytes: options.maxBodyBytes ?? 64 * MiB,
      maxResponseBytes: options.maxResponseBytes ?? 64 * MiB,
    },
    policy: browserPolicy(options.allowedOrigins ?? parseOriginList(process.env.GATEWAY_ALLOWED_ORIGINS), options.host),
    inFlight: new InFlight(),
    log,
  };

  const server = createServer((request, response) => {
    route(router, request, response).catch((error: unknown) => {
      // Last resort: never crash the process on one request.
      log(`gateway: unexpected failure: ${error instanceof Error ? error.name : "error"}`);
      if (!response.headersSent) send(response, 500, { message: "internal gateway error", code: "XX000" });
      else response.destroy();
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  const wsProxy = attachWebSocketProxy(server, options, {
    allowedHosts: router.sql.allowed,
    policy: router.policy,
    log,
  });

  const address = await listen(server, options.port ?? 4444, options.host ?? "127.0.0.1");
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/sql`,
    wsProxy: `${host}:${address.port}${WS_PATH}`,
    port: address.port,
    stats: () => ({
      ...pools.stats(),
      inFlight: router.inFlight.active,
      requests: router.inFlight.total,
      sessions: wsProxy.sessions(),
    }),
    async close() {
      if (!router.inFlight.beginDrain()) return;
      // Sessions have no natural end to wait for: they are closed (1001) at once.
      const sessionsClosed = wsProxy.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await router.inFlight.idle(options.drainTimeoutMs ?? 10_000);
      server.closeAllConnections();
      await sessionsClosed;
      await pools.close();
      await closed;
    },
  };
}
