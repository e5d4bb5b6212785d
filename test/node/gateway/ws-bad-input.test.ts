/**
 * Bad input on the WebSocket endpoint, case by case: refused before the upgrade with a JSON body
 * and a code, or after it with a WebSocket close code and reason; the gateway keeps serving.
 *
 * Nothing here may reach a non-loopback address: db.example.com must be refused before the
 * gateway connects anywhere.
 */
import { request as httpRequest } from "node:http";
import { Client } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type Gateway, startGateway } from "../../../src/dev/gateway/server.ts";
import { freePort } from "../../../src/dev/postgres.ts";
import { wsProxyFor } from "../../../src/shared/neon-local.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, type TestDatabase } from "../support.ts";
import { useGatewayWebSockets } from "./ws-support.ts";

let db: TestDatabase;
/** Where the test database's server listens, as `HOST:PORT`. */
let address: string;
let deadPort: number;
/** A gateway of this file's own, with small limits. */
let small: Gateway;

beforeAll(async () => {
  useGatewayWebSockets();
  db = await createTestDatabase("wsbad");
  address = new URL(db.url).host;
  deadPort = await freePort();
  small = await startGateway({ port: 0, maxFrameBytes: 1024, maxSessions: 2 });
});

afterAll(async () => {
  await small?.close();
  await dropTestDatabase(db);
});

type Opened =
  | { readonly kind: "open"; readonly ws: WebSocket }
  | { readonly kind: "refused"; readonly status: number; readonly body: Record<string, unknown> };

/** Opens `ws://{proxy}?address=…`, resolving with the socket or the refusal's status and JSON body. */
function open(proxy: string, target: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${proxy}?address=${target}`, { headers });
    ws.once("open", () => resolve({ kind: "open", ws }));
    ws.once("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        expect(response.headers["content-type"]).toBe("application/json");
        resolve({
          kind: "refused",
          status: response.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString()),
        });
      });
    });
    ws.once("error", reject);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** A real session through `proxy` still works. */
async function expectServing(proxy = wsProxyFor(gatewayUrl())): Promise<void> {
  const client = new Client(db.url);
  client.neonConfig.wsProxy = proxy;
  await client.connect();
  try {
    expect((await client.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
  } finally {
    await client.end();
  }
}

describe("refused before the upgrade", () => {
  const shared = () => wsProxyFor(gatewayUrl());

  it.each([
    ["a non-loopback target", (): string => "db.example.com:5432", {}, 403, "28000"],
    ["a target nobody listens on", (): string => `127.0.0.1:${deadPort}`, {}, 502, "08006"],
    ["a missing port", (): string => "127.0.0.1", {}, 400, "08P01"],
    ["a cross-origin page", (): string => address, { Origin: "https://evil.example" }, 403, "28000"],
    ["a non-loopback Host (DNS rebinding)", (): string => address, { Host: "rebound.example:4444" }, 403, "28000"],
  ] as const)("%s", async (_name, target, headers, status, code) => {
    const answer = await open(shared(), target(), headers);
    expect(answer).toMatchObject({ kind: "refused", status, body: { code } });
    if (answer.kind === "refused") expect(answer.body.message).toBeTypeOf("string");
    await expectServing();
  });

  it("accepts a loopback Origin", async () => {
    const answer = await open(shared(), address, { Origin: "http://localhost:5173" });
    expect(answer.kind).toBe("open");
    if (answer.kind === "open") answer.ws.close();
  });

  it("answers a plain GET /v2 with 426 and a JSON body", async () => {
    const response = await fetch(`http://${shared()}?address=${address}`);
    expect(response.status).toBe(426);
    expect(response.headers.get("upgrade")).toBe("websocket");
    expect(await response.json()).toMatchObject({ code: "08P01" });
    await expectServing();
  });

  it("answers a handshake without Sec-WebSocket-Key with 400", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`http://${shared()}?address=${address}`, {
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13" },
      });
      req.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(400);
    await expectServing();
  });

  it("refuses a session over the cap with 503 and 53300", async () => {
    const first = await open(small.wsProxy, address);
    const second = await open(small.wsProxy, address);
    try {
      expect(await open(small.wsProxy, address)).toMatchObject({
        kind: "refused",
        status: 503,
        body: { code: "53300" },
      });
    } finally {
      for (const answer of [first, second]) if (answer.kind === "open") answer.ws.close();
    }
    await expect.poll(() => small.stats().sessions).toBe(0);
    await expectServing(small.wsProxy);
  });
});

describe("closed after the upgrade", () => {
  async function session(proxy = small.wsProxy): Promise<WebSocket> {
    const answer = await open(proxy, address);
    if (answer.kind !== "open") throw new Error(`expected a session, got ${answer.status}`);
    return answer.ws;
  }

  it("closes with 1009 on a frame over the size limit", async () => {
    const ws = await session();
    const end = closed(ws);
    ws.send(Buffer.alloc(4096));
    expect((await end).code).toBe(1009);
    await expectServing(small.wsProxy);
  });

  it("closes with 1002 and a reason on bytes that are not the Postgres protocol", async () => {
    const ws = await session(wsProxyFor(gatewayUrl()));
    const end = closed(ws);
    ws.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const { code, reason } = await end;
    expect(code).toBe(1002);
    expect(reason).toMatch(/startup packet/);
    await expectServing();
  });

  it("closes with 1003 on a text frame", async () => {
    const ws = await session(wsProxyFor(gatewayUrl()));
    const end = closed(ws);
    ws.send("SELECT 1");
    expect((await end).code).toBe(1003);
    await expectServing();
  });

  it("closes an idle session with 4000", async () => {
    // A gateway of its own: an idle limit this short would cut the other tests' sessions on a busy machine.
    const idle = await startGateway({ port: 0, sessionIdleMs: 400 });
    try {
      const ws = await session(idle.wsProxy);
      expect((await closed(ws)).code).toBe(4000);
    } finally {
      await idle.close();
    }
  });

  it("closes open sessions with 1001 when the gateway shuts down", async () => {
    const gateway = await startGateway({ port: 0 });
    const answer = await open(gateway.wsProxy, address);
    expect(answer.kind).toBe("open");
    if (answer.kind !== "open") return;
    const end = closed(answer.ws);
    await gateway.close();
    expect((await end).code).toBe(1001);
    expect(gateway.stats().sessions).toBe(0);
  });
});
