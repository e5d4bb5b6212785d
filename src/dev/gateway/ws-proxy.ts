/**
 * The gateway's WebSocket endpoint: `GET /v2?address=HOST:PORT` upgraded to a WebSocket that
 * carries the Postgres wire protocol, which is what `@neondatabase/serverless` `Pool` and `Client`
 * speak when `neonConfig.wsProxy` points here (the contract of Neon's `wsproxy`).
 *
 * It hangs off the gateway's HTTP server (`upgrade` event) so both endpoints share one port. The
 * TCP connection to Postgres is made before the upgrade is accepted, so an unreachable target is
 * answered with an HTTP error the client can read rather than a socket that opens and dies. Every
 * refusal before the upgrade is a JSON body `{message, code}` like the HTTP endpoint's.
 */
import { type IncomingMessage, type Server, STATUS_CODES } from "node:http";
import { createRequire } from "node:module";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { BrowserPolicy } from "./browser-policy.ts";
import { checkUpgrade, type HandshakeResult, type Refusal, WS_PATH, type WsTarget } from "./ws-handshake.ts";
import { CLOSE, pipeSession, type Session } from "./ws-session.ts";

export interface WebSocketProxyOptions {
  /** Sessions open at once (each is one Postgres connection, outside the HTTP pools); default 100. */
  readonly maxSessions?: number;
  /** Largest WebSocket message accepted from a client, in bytes; default 64 MiB. */
  readonly maxFrameBytes?: number;
  /** A session with no traffic either way for this long is closed; default 5 minutes. */
  readonly sessionIdleMs?: number;
  /** How long connecting to Postgres may take before the upgrade is refused; default 10 s. */
  readonly connectTimeoutMs?: number;
}

export interface WebSocketProxy {
  /** Sessions open or connecting. */
  sessions(): number;
  /** Refuses new upgrades and closes every session (1001), waiting for their sockets to close. */
  close(): Promise<void>;
}

interface ProxyContext {
  readonly allowedHosts: ReadonlySet<string> | "any";
  /** The HTTP endpoint's Host/Origin rules, applied to the upgrade request too. */
  readonly policy: BrowserPolicy;
  readonly log: (line: string) => void;
}

/**
 * `ws` loaded through Node's own resolution: its package maps the "browser" condition to a stub
 * that throws, and the Worker test project's global setup (which starts this gateway) resolves
 * imports with that condition.
 */
const { WebSocketServer } = createRequire(import.meta.url)("ws") as typeof import("ws");
type WebSocketServer = import("ws").WebSocketServer;

const MiB = 1024 * 1024;
const SHUTTING_DOWN: Refusal = { status: 503, code: "57P01", message: "the gateway is shutting down" };

/** Answers an upgrade request without upgrading: a plain HTTP response, then the socket closes. */
function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = JSON.stringify({ message: refusal.message, code: refusal.code });
  const extra = refusal.status === 426 ? "Sec-WebSocket-Version: 13\r\n" : "";
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? "Error"}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

/** Opens the TCP connection to Postgres; `connected` rejects on failure or after `timeoutMs`. */
function dial(target: WsTarget, timeoutMs: number): { tcp: Socket; connected: Promise<void> } {
  const tcp = connect({ host: target.host, port: target.port });
  tcp.setNoDelay(true);
  tcp.setTimeout(timeoutMs, () => tcp.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
  const connected = new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.once("connect", () => {
      tcp.setTimeout(0);
      // From here on the session listens for errors.
      tcp.off("error", reject);
      resolve();
    });
  });
  return { tcp, connected };
}

/** The sessions of one gateway and the rules for admitting new ones. */
class SessionHost implements WebSocketProxy {
  private readonly wss: WebSocketServer;
  /** Open sessions, each with a promise settled when its WebSocket has closed. */
  private readonly open = new Map<Session, Promise<void>>();
  /** Postgres connections being made, with the client socket waiting for the upgrade. */
  private readonly connecting = new Map<Socket, Duplex>();
  private closing = false;

  constructor(
    private readonly options: WebSocketProxyOptions,
    private readonly context: ProxyContext,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxFrameBytes ?? 64 * MiB,
    });
  }

  sessions(): number {
    return this.open.size + this.connecting.size;
  }

  private refuse(socket: Duplex, refusal: Refusal, label = "?"): void {
    this.context.log(`WS ${WS_PATH} ${refusal.status} ${label} ${refusal.code}`);
    if (!socket.destroyed) refuseUpgrade(socket, refusal);
  }

  private admit(request: IncomingMessage): HandshakeResult {
    if (this.closing) return { ok: false, ...SHUTTING_DOWN };
    const { method = "GET", url = "/", headers } = request;
    const verdict = checkUpgrade(method, url, headers, this.context.allowedHosts, this.context.policy);
    const max = this.options.maxSessions ?? 100;
    if (verdict.ok && this.sessions() >= max) {
      return { ok: false, status: 503, code: "53300", message: `too many sessions (max ${max})` };
    }
    return verdict;
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, tcp: Socket, target: WsTarget): void {
    let upgraded = false;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      const session = pipeSession(ws, tcp, {
        idleMs: this.options.sessionIdleMs ?? 5 * 60_000,
        onEnd: (code, reason) => {
          this.open.delete(session);
          this.context.log(`WS ${WS_PATH} ${target.label} closed ${code} (${reason})`);
        },
      });
      this.open.set(session, closed);
    });
    // `ws` upgrades synchronously or not at all (and then it has answered the client itself).
    if (!upgraded) tcp.destroy();
  }

  /** The server's `upgrade` listener. */
  readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A client that resets mid-handshake must not crash the process.
    socket.on("error", () => socket.destroy());
    const verdict = this.admit(request);
    if (!verdict.ok) {
      this.refuse(socket, verdict);
      return;
    }
    const { target } = verdict;
    const { tcp, connected } = dial(target, this.options.connectTimeoutMs ?? 10_000);
    this.connecting.set(tcp, socket);
    const clientGone = () => tcp.destroy(new Error("the client went away"));
    socket.once("close", clientGone);
    connected.then(
      () => {
        socket.off("close", clientGone);
        if (this.connecting.delete(tcp)) this.upgrade(request, socket, head, tcp, target);
      },
      (error: NodeJS.ErrnoException) => {
        socket.off("close", clientGone);
        if (!this.connecting.delete(tcp)) return;
        const message = `could not reach Postgres at ${target.label}: ${error.code ?? error.message}`;
        this.refuse(socket, { status: 502, code: "08006", message }, target.label);
      },
    );
  };

  async close(): Promise<void> {
    this.closing = true;
    for (const [tcp, socket] of this.connecting) {
      this.connecting.delete(tcp);
      tcp.destroy();
      this.refuse(socket, SHUTTING_DOWN);
    }
    const waits = [...this.open.values()];
    for (const session of [...this.open.keys()]) session.close(CLOSE.shuttingDown, "the gateway is shutting down");
    await Promise.allSettled(waits);
    this.wss.close();
  }
}

/** Attaches the `/v2` endpoint to `server`; the HTTP routes are untouched. */
export function attachWebSocketProxy(
  server: Server,
  options: WebSocketProxyOptions,
  context: ProxyContext,
): WebSocketProxy {
  const host = new SessionHost(options, context);
  server.on("upgrade", host.onUpgrade);
  return host;
}
