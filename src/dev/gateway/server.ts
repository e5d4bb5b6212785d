/**
 * A Neon-compatible SQL-over-HTTP gateway for local development and tests (dev-only).
 *
 * It speaks what `@neondatabase/serverless` `neon()` sends (POST /sql, see NEON-HTTP.md) and runs
 * each request on a real Postgres through `pg` pools, so Worker code is identical in production,
 * in `wrangler dev` and in tests. User, password and database come from the connection string the
 * client sends and are checked by Postgres itself. The same port serves Neon's WebSocket protocol
 * on `/v2` for `Pool` and `Client` sessions (ws-proxy.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { isPostgresError, type PoolLimits, PoolManager, type PoolStats } from "./pools.ts";
import {
  beginStatement,
  checkTarget,
  errorBody,
  GatewayError,
  parseBatchOptions,
  parseConnectionString,
  parseRequestBody,
  parseResponseOptions,
  type QuerySpec,
  type ResultShape,
  shapeResult,
  type Target,
} from "./protocol.ts";
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

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "POST, OPTIONS",
  "access-control-allow-headers":
    "Authorization, Content-Type, Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, Neon-Batch-Isolation-Level, Neon-Batch-Read-Only, Neon-Batch-Deferrable",
  "access-control-max-age": "86400",
};

function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": bytes.length,
    ...CORS_HEADERS,
    ...extraHeaders,
  });
  response.end(bytes);
}

/** Reads the body as UTF-8 text, refusing more than `limit` bytes without buffering them. */
function readBody(request: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new GatewayError(413, "54000", `request body is ${declared} bytes; the limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners("data");
        request.resume();
        reject(new GatewayError(413, "54000", `request body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

async function runQuery(client: pg.PoolClient, spec: QuerySpec): Promise<ResultShape> {
  // Extended protocol always, as Neon does: one statement per query, parameters bound server-side.
  const result = await client.query({
    text: spec.query,
    values: spec.params as unknown[],
    rowMode: "array",
    queryMode: "extended",
  } as pg.QueryArrayConfig);
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows as (string | null)[][],
    fields: result.fields.map((field) => ({ ...field, format: field.format ?? "text" })),
  };
}

/** Connection failures (refused, reset, timed out) are the upstream's fault: 502, not a 400. */
function classify(error: unknown, target: Target | undefined): { status: number; body: Record<string, string> } {
  if (error instanceof GatewayError)
    return { status: error.status, body: { message: error.message, code: error.code } };
  if (isPostgresError(error)) return { status: 400, body: errorBody(error) };
  const where = target ? ` at ${target.host}:${target.port}` : "";
  const reason =
    error instanceof Error && "code" in error
      ? String(error.code)
      : error instanceof Error
        ? error.message
        : "unknown error";
  return { status: 502, body: { message: `could not reach Postgres${where}: ${reason}`, code: "08006" } };
}

export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const maxBodyBytes = options.maxBodyBytes ?? 64 * MiB;
  const maxResponseBytes = options.maxResponseBytes ?? 64 * MiB;
  const allowed =
    options.allowedHosts === "any" ? "any" : new Set((options.allowedHosts ?? []).map((host) => host.toLowerCase()));
  const log = options.onLog ?? (() => {});
  const pools = new PoolManager({
    maxPerPool: options.maxPerPool ?? 10,
    maxTotal: options.maxTotal ?? 100,
    idleMs: options.idleMs ?? 30_000,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 10_000,
    statementTimeoutMs: options.statementTimeoutMs,
  });
  let inFlight = 0;
  let requests = 0;
  let draining = false;
  const idleWaiters = new Set<() => void>();

  /** Answers one POST /sql; `onTarget` learns the target as soon as it is known, for logs. */
  async function handleSql(request: IncomingMessage, onTarget: (target: Target) => void): Promise<Buffer> {
    // Read the (bounded) body first so an early refusal never leaves unread bytes on the socket.
    const text = await readBody(request, maxBodyBytes);
    const target = parseConnectionString(request.headers);
    onTarget(target);
    checkTarget(target, allowed);
    const shape = parseResponseOptions(request.headers);
    const body = parseRequestBody(text);
    const batchOptions = body.kind === "batch" ? parseBatchOptions(request.headers) : undefined;

    const payload = await pools.withClient(target, async (client) => {
      if (body.kind === "single") return shapeResult(await runQuery(client, body.query), shape);
      await client.query(beginStatement(batchOptions ?? parseBatchOptions({})));
      try {
        const results = [];
        for (const spec of body.queries) results.push(shapeResult(await runQuery(client, spec), shape));
        await client.query("COMMIT");
        return { results };
      } catch (error) {
        // A failing statement rolls the whole batch back, as on Neon.
        await client.query("ROLLBACK");
        throw error;
      }
    });
    // Encoded once: the size check and the Content-Length use the same bytes that are sent.
    const json = Buffer.from(JSON.stringify(payload));
    if (json.length > maxResponseBytes) {
      throw new GatewayError(400, "54000", `response is too large (max is ${maxResponseBytes} bytes)`);
    }
    return json;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (request.url ?? "/").split("?")[0];
    if (request.method === "OPTIONS") {
      response.writeHead(204, CORS_HEADERS).end();
      return;
    }
    if (path === "/healthz" && request.method === "GET") {
      send(response, 200, { ok: !draining, inFlight, ...pools.stats() });
      return;
    }
    if (path === WS_PATH) {
      send(
        response,
        426,
        { message: `${WS_PATH} is a WebSocket endpoint: upgrade to websocket`, code: "08P01" },
        {
          upgrade: "websocket",
        },
      );
      return;
    }
    if (path !== "/sql") {
      send(response, 404, {
        message: `no route ${request.method} ${path}: the gateway serves POST /sql`,
        code: "08P01",
      });
      return;
    }
    if (request.method !== "POST") {
      send(response, 405, { message: "use POST for /sql", code: "08P01" }, { allow: "POST, OPTIONS" });
      return;
    }
    if (draining) {
      send(response, 503, { message: "the gateway is shutting down", code: "57P01" }, { connection: "close" });
      return;
    }
    inFlight += 1;
    requests += 1;
    let target: Target | undefined;
    try {
      const json = await handleSql(request, (known) => {
        target = known;
      });
      send(response, 200, json);
      log(`POST /sql 200 ${target?.label ?? "?"} ${(performance.now() - started).toFixed(1)}ms`);
    } catch (error) {
      const { status, body } = classify(error, target);
      // After an oversized body the rest of the stream is unread: close rather than reuse the socket.
      send(response, status, body, status === 413 ? { connection: "close" } : {});
      log(
        `POST /sql ${status} ${target?.label ?? "?"} ${body.code ?? ""} ${(performance.now() - started).toFixed(1)}ms`,
      );
    } finally {
      inFlight -= 1;
      if (inFlight === 0) for (const wake of idleWaiters) wake();
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // Last resort: never crash the process on one request.
      log(`gateway: unexpected failure: ${error instanceof Error ? error.name : "error"}`);
      if (!response.headersSent) send(response, 500, { message: "internal gateway error", code: "XX000" });
      else response.destroy();
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  const wsProxy = attachWebSocketProxy(server, options, { allowedHosts: allowed, log });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 4444, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}/sql`,
    wsProxy: `${host}:${address.port}${WS_PATH}`,
    port: address.port,
    stats: () => ({ ...pools.stats(), inFlight, requests, sessions: wsProxy.sessions() }),
    async close() {
      if (draining) return;
      draining = true;
      // Sessions have no natural end to wait for: they are closed (1001) at once.
      const sessionsClosed = wsProxy.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => idleWaiters.add(resolve)),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, options.drainTimeoutMs ?? 10_000);
          }),
        ]);
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await sessionsClosed;
      await pools.close();
      await closed;
    },
  };
}
