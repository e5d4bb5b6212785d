/**
 * What the gateway accepts as a WebSocket upgrade on `/v2`, decided without I/O.
 *
 * The contract is Neon's `wsproxy` (see `@neondatabase/serverless` CONFIG.md, `wsProxy`): with
 * `neonConfig.wsProxy = "127.0.0.1:4444/v2"` the driver opens `ws://127.0.0.1:4444/v2?address=HOST:PORT`
 * and speaks the Postgres wire protocol inside binary frames. The upgrade is checked like the HTTP
 * endpoint: the target must be loopback unless allowed, and the `Host` and `Origin` pass the same
 * browser policy as `/sql` (browser-policy.ts), so a web page or a DNS-rebound name cannot open a session.
 */
import { type BrowserPolicy, checkBrowserAccess } from "./browser-policy.ts";
import { isLoopbackHost } from "./protocol.ts";

/** The path the driver's default `wsProxy` shape ends with. */
export const WS_PATH = "/v2";

/** Where one session goes; `label` is safe to log. */
export interface WsTarget {
  readonly host: string;
  readonly port: number;
  readonly label: string;
}

/** A refusal, answered as a JSON HTTP response before any upgrade. */
export interface Refusal {
  readonly status: number;
  /** SQLSTATE-like, as in the HTTP endpoint's error bodies. */
  readonly code: string;
  readonly message: string;
}

export type HandshakeResult = { readonly ok: true; readonly target: WsTarget } | ({ readonly ok: false } & Refusal);

type HeaderValue = string | string[] | undefined;

function first(value: HeaderValue): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function refuse(status: number, code: string, message: string): HandshakeResult {
  return { ok: false, status, code, message };
}

/** Parses `HOST:PORT` (IPv6 in brackets) from the `address` query parameter. */
export function parseAddress(address: string | null): WsTarget | undefined {
  if (!address) return undefined;
  const match = /^(?:\[([^\]]+)\]|([^:[\]/]+)):(\d{1,5})$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port, label: `${host}:${port}` };
}

/** A base64 encoding of 16 bytes (RFC 6455 §4.1, item 7). */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * The opening handshake's own rules (RFC 6455 §4.2.1), checked here so that a bad handshake is
 * answered in the gateway's JSON shape before any connection to Postgres is made.
 */
function checkHandshakeShape(method: string, headers: Readonly<Record<string, HeaderValue>>): Refusal | undefined {
  if (method !== "GET") return { status: 405, code: "08P01", message: "a WebSocket handshake must use GET" };
  if (first(headers.upgrade)?.toLowerCase() !== "websocket") {
    return { status: 400, code: "08P01", message: 'a WebSocket handshake needs "Upgrade: websocket"' };
  }
  if (first(headers["sec-websocket-version"]) !== "13") {
    return { status: 426, code: "08P01", message: "unsupported WebSocket version: use Sec-WebSocket-Version 13" };
  }
  if (!WEBSOCKET_KEY.test(first(headers["sec-websocket-key"]) ?? "")) {
    return { status: 400, code: "08P01", message: "missing or invalid Sec-WebSocket-Key" };
  }
  return undefined;
}

/**
 * Decides one upgrade request: the path, the handshake, the browser-facing headers, then the
 * target. `requestUrl` is the request line's target (`/v2?address=…`).
 */
export function checkUpgrade(
  method: string,
  requestUrl: string,
  headers: Readonly<Record<string, HeaderValue>>,
  allowedHosts: ReadonlySet<string> | "any",
  policy: BrowserPolicy,
): HandshakeResult {
  const url = new URL(requestUrl, "http://gateway.invalid");
  if (url.pathname !== WS_PATH) {
    return refuse(404, "08P01", `no WebSocket route ${url.pathname}: the gateway serves ${WS_PATH}?address=HOST:PORT`);
  }
  const shape = checkHandshakeShape(method, headers);
  if (shape) return { ok: false, ...shape };
  const access = checkBrowserAccess(policy, first(headers.host), first(headers.origin));
  if (!access.ok) {
    return refuse(
      403,
      "28000",
      `refused: ${access.reason} (the gateway answers loopback names and allowed origins only)`,
    );
  }
  const target = parseAddress(url.searchParams.get("address"));
  if (!target) {
    return refuse(400, "08P01", `${WS_PATH} needs ?address=HOST:PORT naming the Postgres server`);
  }
  const allowed = allowedHosts === "any" || isLoopbackHost(target.host) || allowedHosts.has(target.host.toLowerCase());
  if (!allowed) {
    return refuse(
      403,
      "28000",
      `host ${target.host} is not allowed: the gateway forwards to loopback hosts only (set allowedHosts to add others)`,
    );
  }
  return { ok: true, target };
}
