/**
 * A `fetch` for `neonConfig.fetchFunction` in Node, for `neon()` talking to the local gateway over
 * plain HTTP (Node-only; never imported by the Worker, which uses the platform's fetch).
 *
 * Node's global fetch (undici) spends about 250 µs of CPU per request at 8 in flight, which caps
 * `neon()` against the gateway well below what the gateway serves. The driver only reads `ok`,
 * `status`, `json()` and `text()` of the answer, so this sends `http:` requests through undici's
 * dispatcher on one keep-alive pool per origin and wraps the collected bytes in a real `Response`.
 * Anything else (`https:`, a `Request` object, a streamed or form body) goes to `globalThis.fetch`
 * unchanged.
 *
 * Like fetch: an aborted `init.signal` rejects with its reason (at once if already aborted, and
 * mid-flight after aborting the request); a network failure rejects with `TypeError("fetch
 * failed", { cause })`. Unlike fetch: redirects are returned as they are, not followed, no
 * `accept-encoding` is sent, so answers come back uncompressed (the gateway never compresses), and
 * `response.url` is empty.
 */
import type { IncomingHttpHeaders } from "node:http";
import { createRequire } from "node:module";
import type { neonConfig } from "@neondatabase/serverless";
import type { Dispatcher, Pool } from "undici";

// The Pool class alone: undici's index installs its own Agent as the process-wide dispatcher of
// Node's built-in fetch on load, which would change every other fetch in the process.
const UndiciPool = createRequire(import.meta.url)("undici/lib/dispatcher/pool.js") as typeof Pool;

/**
 * One keep-alive connection pool per origin for every call: a socket per call is the cost this
 * module exists to avoid. undici's dispatcher API (the engine under Node's own fetch, without the
 * WHATWG stream and request machinery around it) costs about half of `node:http`'s client per call.
 */
const pools = new Map<string, Pool>();

function poolFor(origin: string): Pool {
  let pool = pools.get(origin);
  if (!pool) {
    pool = new UndiciPool(origin, { connections: 64 });
    pools.set(origin, pool);
  }
  return pool;
}

/** Statuses whose Response must have a null body (the Response constructor refuses one). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
/** Methods fetch upper-cases; any other is sent as given. */
const NORMALISED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

interface Target {
  readonly origin: string;
  readonly path: string;
}

/** The last endpoint parsed: every call of one process goes to the same gateway URL. */
let lastUrl: string | undefined;
let lastTarget: Target | undefined;

/** The parts `http.request` needs, or undefined when `url` is not an `http:` URL. */
function httpTarget(url: string): Target | undefined {
  if (url === lastUrl) return lastTarget;
  let target: Target | undefined;
  if (URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.protocol === "http:") {
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    }
  }
  lastUrl = url;
  lastTarget = target;
  return target;
}

/** Request headers as the plain object `http.request` takes; repeated names joined as Headers does. */
function plainHeaders(headers: RequestInit["headers"]): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  if (headers instanceof Headers) return Object.fromEntries(headers);
  if (Array.isArray(headers)) {
    const out: Record<string, string> = {};
    for (const [name = "", value = ""] of headers) {
      const key = name.toLowerCase();
      out[key] = key in out ? `${out[key]}, ${value}` : value;
    }
    return out;
  }
  return headers as Record<string, string>;
}

function toResponse(status: number, statusText: string, raw: IncomingHttpHeaders, chunks: Buffer[], head: boolean) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const each of value) headers.append(name, each);
    else if (value !== undefined) headers.append(name, value);
  }
  const body = head || NULL_BODY_STATUS.has(status) ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  return new Response(body as Uint8Array<ArrayBuffer> | null, { status, statusText, headers });
}

/** `fetch(input, init)` over undici's dispatcher for `http:` URLs; `globalThis.fetch` for the rest. */
export function gatewayFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : undefined;
  const target = url === undefined ? undefined : httpTarget(url);
  const body = init?.body ?? undefined;
  if (!target || (body !== undefined && typeof body !== "string" && !(body instanceof Uint8Array)))
    return globalThis.fetch(input, init);

  const given = init?.method ?? "GET";
  const method = NORMALISED_METHODS.has(given.toUpperCase()) ? given.toUpperCase() : given;
  if (body !== undefined && (method === "GET" || method === "HEAD"))
    return Promise.reject(new TypeError("Request with GET/HEAD method cannot have body."));
  const signal = init?.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);

  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    const settle = (error: unknown, response?: Response) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (response) resolve(response);
      else reject(error);
    };
    const onAbort = () => {
      settle(signal?.reason);
      controller?.abort(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
    };
    const chunks: Buffer[] = [];
    let status = 0;
    let statusText = "";
    let headers: IncomingHttpHeaders = {};
    signal?.addEventListener("abort", onAbort, { once: true });
    poolFor(target.origin).dispatch(
      { method, path: target.path, headers: plainHeaders(init?.headers), body: body ?? null },
      {
        onRequestStart(started) {
          controller = started;
          if (settled) started.abort(new Error("aborted"));
        },
        onResponseStart(_controller, statusCode, responseHeaders, statusMessage) {
          status = statusCode;
          statusText = statusMessage ?? "";
          headers = responseHeaders;
        },
        onResponseData(_controller, chunk) {
          chunks.push(chunk);
        },
        onResponseEnd() {
          try {
            settle(undefined, toResponse(status, statusText, headers, chunks, method === "HEAD"));
          } catch (error) {
            settle(error);
          }
        },
        onResponseError(_controller, error) {
          settle(new TypeError("fetch failed", { cause: error }));
        },
      },
    );
  });
}

/**
 * Points `config.fetchFunction` at `gatewayFetch` when `endpoint` is a plain `http://` URL (the
 * local gateway), and leaves it alone otherwise: production talks https to Neon with the
 * platform's fetch. Returns whether it set it.
 */
export function useGatewayFetch(config: typeof neonConfig, endpoint: string | undefined): boolean {
  if (endpoint === undefined || !URL.canParse(endpoint) || new URL(endpoint).protocol !== "http:") return false;
  config.fetchFunction = gatewayFetch;
  return true;
}
