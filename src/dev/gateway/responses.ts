/**
 * The gateway's HTTP plumbing: a request body read with a hard size cap (refused before it is
 * buffered, so a huge upload cannot exhaust the dev machine's memory) and JSON responses with an
 * exact Content-Length. Kept apart from routing so both the /sql handler and the router use it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { GatewayError } from "./protocol.ts";

export function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": bytes.length,
    ...extraHeaders,
  });
  response.end(bytes);
}

/** Reads the body as UTF-8 text, refusing more than `limit` bytes without buffering them. */
export function readBody(request: IncomingMessage, limit: number): Promise<string> {
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
