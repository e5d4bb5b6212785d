/**
 * Serves a fetch-style app (the fake Neon and Cloudflare APIs) on 127.0.0.1, for clients that need a
 * URL. A thin adapter from `node:http` to the app's `fetch` (`@hono/node-server` is not a
 * dependency, and this is all the fakes need); `close()` also drops kept-alive connections so a test
 * can simulate the API going away.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FetchApp = (request: Request) => Response | Promise<Response>;

export interface ServedApp {
  readonly port: number;
  close(): Promise<void>;
}

export async function serveApp(fetch: FetchApp, port = 0): Promise<ServedApp> {
  const server = createServer((req, res) => {
    serve(fetch, req, res).catch(() => {
      res.writeHead(500).end();
    });
  });
  await listen(server, port);
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
}

/** Answers one Node request with the app's `fetch`. */
async function serve(fetch: FetchApp, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const response = await fetch(await toRequest(req));
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(body.length > 0 ? body : undefined);
}

async function toRequest(req: IncomingMessage): Promise<Request> {
  const method = req.method ?? "GET";
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, one);
  }
  const chunks: Buffer[] = [];
  if (method !== "GET" && method !== "HEAD") for await (const chunk of req) chunks.push(chunk as Buffer);
  return new Request(new URL(req.url ?? "/", "http://127.0.0.1"), {
    method,
    headers,
    body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
  });
}
