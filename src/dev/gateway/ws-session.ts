/**
 * One WebSocket session of the gateway: binary frames from the client go to a TCP connection to
 * Postgres and bytes from Postgres go back as binary frames, as Neon's `wsproxy` does. The gateway
 * never reads the protocol past the first packet; Postgres authenticates and answers everything.
 *
 * Each side applies backpressure to the other (a slow client pauses the Postgres socket, a slow
 * Postgres pauses the WebSocket), a session with no traffic either way is closed, and whichever
 * side ends first ends the other, with a WebSocket close code that says why (RFC 6455 §7.4).
 */
import type { Socket } from "node:net";
import type { RawData, WebSocket } from "ws";
import { checkStartupPacket } from "./pg-startup.ts";

/** Close codes the gateway sends; 1009 (frame too large) is sent by `ws` itself. */
export const CLOSE = {
  /** Postgres ended the connection (after an error message, if it had one to give). */
  upstreamEnded: 1000,
  shuttingDown: 1001,
  notPostgres: 1002,
  textFrame: 1003,
  upstreamFailed: 1011,
  /** Private-use range (RFC 6455 §7.4.2): no traffic for the idle timeout. */
  idle: 4000,
} as const;

/** Bytes queued towards the client before Postgres is paused. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** A close reason is at most 123 bytes (RFC 6455 §5.5: control frame payload ≤ 125). */
const MAX_REASON_BYTES = 123;
/** How long a client gets to answer our close frame before the socket is cut. */
const CLOSE_GRACE_MS = 2_000;

export interface SessionOptions {
  /** Close the session after this long without a byte either way. */
  readonly idleMs: number;
  /** Called once, when both ends are closed or closing. */
  readonly onEnd: (code: number, reason: string) => void;
}

export interface Session {
  /** Ends the session from the gateway's side (shutdown). */
  close(code: number, reason: string): void;
}

function reasonText(text: string): string {
  const bytes = Buffer.from(text);
  return bytes.length <= MAX_REASON_BYTES ? text : bytes.subarray(0, MAX_REASON_BYTES).toString("utf8");
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** Pipes `ws` and `tcp` (already connected) until either ends. */
export function pipeSession(ws: WebSocket, tcp: Socket, options: SessionOptions): Session {
  let ended = false;
  /** Bytes received before the startup packet could be judged. */
  let head: Buffer | undefined = Buffer.alloc(0);

  function finish(code: number, reason: string): void {
    if (ended) return;
    ended = true;
    clearTimeout(idle);
    tcp.destroy();
    if (ws.readyState === ws.OPEN) ws.close(code, reasonText(reason));
    if (ws.readyState !== ws.CLOSED) setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    options.onEnd(code, reason);
  }

  const idle = setTimeout(() => finish(CLOSE.idle, `session idle for ${options.idleMs} ms`), options.idleMs);
  idle.unref();

  function toPostgres(chunk: Buffer): void {
    if (!tcp.write(chunk) && !ws.isPaused) {
      ws.pause();
      tcp.once("drain", () => ws.resume());
    }
  }

  ws.on("message", (data, isBinary) => {
    if (ended) return;
    idle.refresh();
    if (!isBinary) {
      finish(CLOSE.textFrame, "text frames are not accepted: send the Postgres protocol in binary frames");
      return;
    }
    const chunk = toBuffer(data);
    if (head === undefined) {
      toPostgres(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const verdict = checkStartupPacket(head);
    if (verdict === "more") return;
    if (verdict !== "ok") {
      finish(CLOSE.notPostgres, verdict.problem);
      return;
    }
    const buffered = head;
    head = undefined;
    toPostgres(buffered);
  });

  tcp.on("data", (chunk: Buffer) => {
    idle.refresh();
    ws.send(chunk, { binary: true }, () => {
      if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER_BYTES) tcp.resume();
    });
    if (ws.bufferedAmount >= HIGH_WATER_BYTES) tcp.pause();
  });

  tcp.on("error", (error: NodeJS.ErrnoException) => {
    finish(CLOSE.upstreamFailed, `Postgres connection failed: ${error.code ?? error.message}`);
  });
  tcp.on("close", () => finish(CLOSE.upstreamEnded, "Postgres closed the connection"));
  // `ws` closes with 1009 or 1002 itself on an oversized or malformed frame, then emits these.
  ws.on("error", (error) => finish(CLOSE.notPostgres, `WebSocket error: ${error.message}`));
  ws.on("close", (code) => finish(code, "client closed the session"));
  return { close: finish };
}
