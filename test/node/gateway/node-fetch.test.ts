/**
 * `gatewayFetch`, the `node:http` fetch Node code hands `neon()` for the local gateway, against
 * Node's default fetch: the same query set, errors, batches and aborts must come out identical
 * both ways, over a handful of kept-alive TCP connections; `https:` is never taken over.
 */
import { execFile } from "node:child_process";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { promisify } from "node:util";
import { NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { gatewayFetch, useGatewayFetch } from "../../../src/dev/gateway/node-fetch.ts";
import { type Gateway, startGateway } from "../../../src/dev/gateway/server.ts";
import { freePort } from "../../../src/dev/postgres.ts";
import { createTestDatabase, dropTestDatabase, type TestDatabase } from "../support.ts";
import { comparable, EVERY_TYPE_DDL, PARITY_CASES } from "./every-type.ts";

let gateway: Gateway;
let db: TestDatabase;

beforeAll(async () => {
  gateway = await startGateway({ port: 0 });
  neonConfig.fetchEndpoint = gateway.url;
  neonConfig.fetchFunction = undefined;
  db = await createTestDatabase("nodefetch");
  const sql = neon(db.url);
  for (const statement of EVERY_TYPE_DDL) await sql.query(statement);
  await sql`CREATE TABLE notes (v text NOT NULL)`;
});

afterEach(() => {
  vi.restoreAllMocks();
  neonConfig.fetchEndpoint = gateway.url;
  neonConfig.fetchFunction = undefined;
});

afterAll(async () => {
  await gateway?.close();
  if (db) await dropTestDatabase(db);
});

/**
 * Runs `work` with the default fetch, then with gatewayFetch (checking that the default fetch is
 * then never called, so the answer really came over node:http).
 */
async function bothWays<T>(work: () => Promise<T>): Promise<{ viaFetch: T; viaNodeHttp: T }> {
  neonConfig.fetchFunction = undefined;
  const viaFetch = await work();
  expect(useGatewayFetch(neonConfig, gateway.url)).toBe(true);
  const platformFetch = vi.spyOn(globalThis, "fetch");
  try {
    const viaNodeHttp = await work();
    expect(platformFetch).not.toHaveBeenCalled();
    return { viaFetch, viaNodeHttp };
  } finally {
    platformFetch.mockRestore();
    neonConfig.fetchFunction = undefined;
  }
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

/** Every field the driver copies from the gateway's error body, plus its name and message. */
function errorFields(error: unknown): Record<string, unknown> {
  expect(error).toBeInstanceOf(NeonDbError);
  const e = error as NeonDbError & Record<string, unknown>;
  const fields = ["severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where"];
  const more = ["schema", "table", "column", "dataType", "constraint", "file", "line", "routine"];
  return {
    name: e.name,
    message: e.message,
    ...Object.fromEntries([...fields, ...more].map((field) => [field, e[field]])),
  };
}

describe("neon() answers the same through gatewayFetch and the default fetch", () => {
  for (const testCase of PARITY_CASES) {
    it(testCase.name, async () => {
      const sql = neon(db.url, { fullResults: true });
      const { viaFetch, viaNodeHttp } = await bothWays(async () =>
        comparable(await sql.query(testCase.text, testCase.params ?? [])),
      );
      // The serial id differs between the two inserts; everything else must not.
      if (testCase.text.startsWith("INSERT")) {
        for (const row of [...viaFetch.rows, ...viaNodeHttp.rows] as Record<string, unknown>[]) row.id = "(serial)";
      }
      expect(viaNodeHttp).toEqual(viaFetch);
    });
  }

  it("reports a division by zero with the same error fields", async () => {
    const sql = neon(db.url);
    const { viaFetch, viaNodeHttp } = await bothWays(async () =>
      errorFields(await failure(sql.query("SELECT 1 / (SELECT count(*) FROM everything WHERE false)::int"))),
    );
    expect(viaFetch.code).toBe("22012");
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("reports a syntax error with the same position", async () => {
    const sql = neon(db.url);
    const { viaFetch, viaNodeHttp } = await bothWays(async () =>
      errorFields(await failure(sql.query("SELECT 1 FROM everything WHER id = 1"))),
    );
    expect(viaFetch).toMatchObject({ code: "42601", position: "31" });
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("surfaces a gateway refusal (non-loopback host, 403) with the same message", async () => {
    const sql = neon("postgres://u:p@db.example.com/x");
    const { viaFetch, viaNodeHttp } = await bothWays(async () => errorFields(await failure(sql`SELECT 1`)));
    expect(viaFetch.message).toContain("HTTP status 403");
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("surfaces an unreachable gateway as the same connection error", async () => {
    neonConfig.fetchEndpoint = `http://127.0.0.1:${await freePort()}/sql`;
    const sql = neon(db.url);
    const { viaFetch, viaNodeHttp } = await bothWays(async (): Promise<Record<string, unknown>> => {
      const error = (await failure(sql`SELECT 1`)) as NeonDbError & { sourceError?: unknown };
      expect(error.sourceError).toBeInstanceOf(TypeError);
      return { ...errorFields(error), cause: ((error.sourceError as Error).cause as { code?: string }).code };
    });
    expect(viaFetch.message).toBe("Error connecting to database: TypeError: fetch failed");
    expect(viaFetch.cause).toBe("ECONNREFUSED");
    expect(viaNodeHttp).toEqual(viaFetch);
  });
});

describe("batches through gatewayFetch", () => {
  it("runs sql.transaction the same both ways", async () => {
    const sql = neon(db.url, { fullResults: true });
    const { viaFetch, viaNodeHttp } = await bothWays(async () => {
      const results = await sql.transaction(
        (tx) => [
          tx`INSERT INTO notes (v) VALUES ('first'), ('second') RETURNING v`,
          tx`SELECT count(*)::int AS n FROM notes`,
          tx`DELETE FROM notes RETURNING v`,
        ],
        { isolationLevel: "Serializable" },
      );
      return results.map(comparable);
    });
    expect(viaFetch.map((r) => r.rows)).toEqual([
      [{ v: "first" }, { v: "second" }],
      [{ n: 2 }],
      [{ v: "first" }, { v: "second" }],
    ]);
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("rolls a failing batch back and reports the same error both ways", async () => {
    const sql = neon(db.url);
    const { viaFetch, viaNodeHttp } = await bothWays(async () => {
      const error = await failure(sql.transaction([sql`INSERT INTO notes (v) VALUES ('kept?')`, sql`SELECT 1 / 0`]));
      const [left] = await sql`SELECT count(*)::int AS n FROM notes`;
      return { error: errorFields(error), left };
    });
    expect(viaFetch).toMatchObject({ error: { code: "22012" }, left: { n: 0 } });
    expect(viaNodeHttp).toEqual(viaFetch);
  });
});

describe("AbortSignal through gatewayFetch", () => {
  it("rejects a query past its timeout like fetch does, and the gateway serves the next one", async () => {
    const { viaFetch, viaNodeHttp } = await bothWays(async () => {
      const slow = neon(db.url, { fetchOptions: { signal: AbortSignal.timeout(200) } });
      const error = (await failure(slow`SELECT pg_sleep(5)`)) as NeonDbError & { sourceError?: unknown };
      expect(await neon(db.url)`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      return { message: error?.message, reason: (error?.sourceError as Error | undefined)?.name };
    });
    expect(viaFetch).toEqual({
      message: "Error connecting to database: TimeoutError: The operation was aborted due to timeout",
      reason: "TimeoutError",
    });
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("rejects an already-aborted signal without sending anything", async () => {
    const { viaFetch, viaNodeHttp } = await bothWays(async () => {
      const before = gateway.stats().requests;
      const aborted = neon(db.url, { fetchOptions: { signal: AbortSignal.abort() } });
      const error = (await failure(aborted`SELECT 1`)) as NeonDbError & { sourceError?: unknown };
      return {
        sent: gateway.stats().requests - before,
        message: error?.message,
        reason: (error?.sourceError as Error | undefined)?.name,
      };
    });
    expect(viaFetch).toEqual({
      sent: 0,
      message: "Error connecting to database: AbortError: This operation was aborted",
      reason: "AbortError",
    });
    expect(viaNodeHttp).toEqual(viaFetch);
  });
});

describe("keep-alive", () => {
  let front: Server;
  const sockets = new Set<Socket>();
  let connections = 0;

  beforeAll(async () => {
    // A TCP relay in front of the gateway that counts the connections clients open to it.
    front = createServer((client) => {
      connections += 1;
      const upstream = connect(gateway.port, "127.0.0.1");
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => front?.close(() => resolve()));
  });

  it("sends 50 sequential queries over a few TCP connections", async () => {
    const { port } = front.address() as { port: number };
    neonConfig.fetchEndpoint = `http://127.0.0.1:${port}/sql`;
    useGatewayFetch(neonConfig, neonConfig.fetchEndpoint);
    const sql = neon(db.url);
    const before = connections;
    for (let i = 0; i < 50; i += 1) expect(await sql`SELECT ${i}::int AS i`).toEqual([{ i }]);
    const opened = connections - before;
    expect(opened).toBeGreaterThanOrEqual(1);
    expect(opened).toBeLessThanOrEqual(3);
  });
});

describe("the fetch outside the gateway", () => {
  it("useGatewayFetch leaves https:// and missing endpoints to the platform fetch", () => {
    const mine = async () => new Response("mine");
    neonConfig.fetchFunction = mine;
    expect(useGatewayFetch(neonConfig, "https://api.example.neon.tech/sql")).toBe(false);
    expect(useGatewayFetch(neonConfig, undefined)).toBe(false);
    expect(useGatewayFetch(neonConfig, "not a url")).toBe(false);
    expect(neonConfig.fetchFunction).toBe(mine);
    expect(useGatewayFetch(neonConfig, "http://127.0.0.1:4444/sql")).toBe(true);
    expect(neonConfig.fetchFunction).toBe(gatewayFetch);
  });

  it("gatewayFetch hands an https URL to globalThis.fetch unchanged", async () => {
    const answer = new Response("from the platform fetch", { status: 299 });
    const platformFetch = vi.spyOn(globalThis, "fetch").mockResolvedValue(answer);
    const init: RequestInit = { method: "POST", body: "{}", headers: { "Neon-Connection-String": "postgres://x" } };
    const response = await gatewayFetch("https://api.example.neon.tech/sql", init);
    expect(platformFetch).toHaveBeenCalledTimes(1);
    expect(platformFetch).toHaveBeenCalledWith("https://api.example.neon.tech/sql", init);
    expect(response).toBe(answer);
  });

  it("gatewayFetch hands a Request object, or a body it does not send itself, to globalThis.fetch", async () => {
    const platformFetch = vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("platform"));
    const request = new Request("http://127.0.0.1:1/sql", { method: "POST", body: "{}" });
    const blobInit: RequestInit = { method: "POST", body: new Blob(["{}"]) };
    expect(await (await gatewayFetch(request)).text()).toBe("platform");
    expect(await (await gatewayFetch("http://127.0.0.1:1/sql", blobInit)).text()).toBe("platform");
    expect(platformFetch.mock.calls).toEqual([
      [request, undefined],
      ["http://127.0.0.1:1/sql", blobInit],
    ]);
  });
});

describe("gatewayFetch as a fetch", () => {
  let echo: HttpServer;
  let echoUrl: string;

  beforeAll(async () => {
    // Answers with what it received, a status text and a repeated header.
    echo = createHttpServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        response.writeHead(201, "Made Here", { "x-repeat": ["one", "two"], "content-type": "application/json" });
        response.end(
          JSON.stringify({
            method: request.method,
            url: request.url,
            custom: request.headers["x-custom"],
            length: request.headers["content-length"],
            chunked: request.headers["transfer-encoding"] ?? null,
            bytes: [...body],
          }),
        );
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoUrl = `http://127.0.0.1:${(echo.address() as { port: number }).port}/echo?x=1`;
  });

  afterAll(async () => {
    echo.closeAllConnections();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it.each([
    {
      name: "Headers and a Uint8Array body",
      headers: new Headers({ "X-Custom": "a" }),
      body: new Uint8Array([0, 1, 255]),
    },
    { name: "a plain object and a string body", headers: { "x-custom": "b" }, body: "héllo" },
  ])("sends $name and answers a Response like fetch's", async ({ headers, body }) => {
    const init: RequestInit = { method: "post", headers, body };
    const describeResponse = async (response: Response) => ({
      status: response.status,
      statusText: response.statusText,
      ok: response.ok,
      repeat: response.headers.get("x-repeat"),
      type: response.headers.get("content-type"),
      json: await response.json(),
    });
    const viaFetch = await describeResponse(await fetch(echoUrl, init));
    const viaNodeHttp = await describeResponse(await gatewayFetch(echoUrl, init));
    expect(viaFetch).toMatchObject({ status: 201, statusText: "Made Here", repeat: "one, two" });
    expect(viaFetch.json).toMatchObject({ method: "POST", url: "/echo?x=1", chunked: null });
    expect(viaNodeHttp).toEqual(viaFetch);
  });

  it("leaves Node's own fetch as it was: a forwarded request with its Content-Length still goes through", async () => {
    // Loading undici's index would make its Agent the dispatcher of Node's built-in fetch, which
    // refuses a caller's content-length header (miniflare's outbound hook forwards one). That
    // happens only if the module loads before Node's fetch first runs, so: a fresh process.
    const moduleUrl = new URL("../../../src/dev/gateway/node-fetch.ts", import.meta.url).href;
    const script = `
      const { gatewayFetch } = await import(${JSON.stringify(moduleUrl)});
      await (await gatewayFetch(${JSON.stringify(echoUrl)}, { method: "POST", body: "x" })).text();
      const forwarded = await fetch(${JSON.stringify(echoUrl)}, {
        method: "POST", headers: { "content-length": "3", "x-custom": "c" }, body: new Uint8Array([1, 2, 3]),
      });
      console.log(JSON.stringify({ status: forwarded.status, body: await forwarded.json() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      script,
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ status: 201, body: { custom: "c", length: "3", bytes: [1, 2, 3] } });
  });
});
