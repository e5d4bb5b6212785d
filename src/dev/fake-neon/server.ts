/**
 * The fake Neon API (`app.ts`) served on a local port, for clients that need a URL: the `neon`
 * provisioner's `@neondatabase/api-client` (axios) in tests, and dev tooling. A thin adapter from
 * `node:http` to the app's `fetch` (`@hono/node-server` is not a dependency, and this is all the
 * fake needs); `close()` also drops kept-alive connections so a test can simulate Neon going away.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createFakeNeonApp, type FakeNeonAppOptions, type FakeNeonControls } from "./app.ts";

export interface FakeNeonOptions extends FakeNeonAppOptions {
  /** Listen port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
}

export interface FakeNeon extends FakeNeonControls {
  /** Base URL for `createApiClient({ baseURL })`, e.g. `http://127.0.0.1:1234/api/v2`. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startFakeNeonApi(options: FakeNeonOptions = {}): Promise<FakeNeon> {
  const { app, ...controls } = createFakeNeonApp(options);
  const server = createServer((req, res) => {
    serve(app.fetch, req, res).catch(() => {
      res.writeHead(500).end();
    });
  });
  await listen(server, options.port ?? 0);
  const { port } = server.address() as AddressInfo;
  return {
    ...controls,
    url: `http://127.0.0.1:${port}/api/v2`,
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
async function serve(
  fetch: (request: Request) => Response | Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
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
