/**
 * The gateway keeps browsers out (issue 16, finding 1): no CORS headers unless an origin is
 * allowed, a request from another origin is refused before any SQL runs, and a `Host` that is not
 * loopback (DNS rebinding) is refused. Requests are sent with node:http so Host and Origin are
 * exactly what a browser would send. The pure decision is unit-tested at the end.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserPolicy, checkBrowserAccess, parseOriginList } from "../../../src/dev/gateway/browser-policy.ts";
import { type Gateway, startGateway } from "../../../src/dev/gateway/server.ts";
import { createTestDatabase, dropTestDatabase, type TestDatabase } from "../support.ts";

let db: TestDatabase;
let gateway: Gateway;
let allowing: Gateway;

beforeAll(async () => {
  db = await createTestDatabase("browser");
  gateway = await startGateway({ port: 0, allowedOrigins: [] });
  allowing = await startGateway({ port: 0, allowedOrigins: ["http://app.example:5173"] });
});

afterAll(async () => {
  await Promise.all([gateway?.close(), allowing?.close()]);
  if (db) await dropTestDatabase(db);
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function send(target: Gateway, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(target.url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const select = (extra: Record<string, string> = {}) => ({
  headers: { "content-type": "application/json", "neon-connection-string": db.url, ...extra },
  body: JSON.stringify({ query: "SELECT 42 AS answer", params: [] }),
});

describe("the dev gateway and browsers", () => {
  it("answers a preflight from another origin without CORS headers, and refuses it", async () => {
    const answer = await send(gateway, "OPTIONS", {
      origin: "https://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "neon-connection-string",
    });
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
    expect(answer.headers["access-control-allow-headers"]).toBeUndefined();
    expect(answer.status).toBe(403);
  });

  it("refuses a POST from another origin before running it", async () => {
    const { headers, body } = select({ origin: "https://evil.example" });
    const answer = await send(gateway, "POST", headers, body);
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "28000" });
    expect(answer.body).not.toContain("42");
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("refuses `Origin: null` (sandboxed frames, file: pages)", async () => {
    const { headers, body } = select({ origin: "null" });
    expect((await send(gateway, "POST", headers, body)).status).toBe(403);
  });

  it("refuses a Host that is not loopback (DNS rebinding)", async () => {
    for (const host of ["evil.example:4444", "evil.example", "127.0.0.1.evil.example", "10.0.0.1:4444"]) {
      const { headers, body } = select({ host });
      const answer = await send(gateway, "POST", headers, body);
      expect(answer.status, host).toBe(403);
      expect(answer.body, host).not.toContain("42");
    }
  });

  it("serves loopback callers without an Origin, and sends no CORS headers to them", async () => {
    for (const host of [undefined, "localhost:4444", "127.0.0.1", "[::1]:4444", "db.localhost"]) {
      const { headers, body } = select(host ? { host } : {});
      const answer = await send(gateway, "POST", headers, body);
      expect(answer.status, String(host)).toBe(200);
      expect(JSON.parse(answer.body).rows).toEqual([{ answer: 42 }]);
      expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
    }
  });

  it("serves a loopback origin (a local app) without granting it CORS", async () => {
    const { headers, body } = select({ origin: "http://localhost:5173" });
    const answer = await send(gateway, "POST", headers, body);
    expect(answer.status).toBe(200);
    expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("grants CORS to an allowed origin only, echoing it (never `*`)", async () => {
    const preflight = await send(allowing, "OPTIONS", { origin: "http://app.example:5173" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("http://app.example:5173");
    expect(preflight.headers.vary).toBe("Origin");
    const { headers, body } = select({ origin: "http://app.example:5173" });
    const answer = await send(allowing, "POST", headers, body);
    expect(answer.status).toBe(200);
    expect(answer.headers["access-control-allow-origin"]).toBe("http://app.example:5173");
    expect((await send(allowing, "OPTIONS", { origin: "http://app.example:5174" })).status).toBe(403);
  });
});

describe("checkBrowserAccess", () => {
  const policy = browserPolicy(["https://ok.example"], undefined);

  it.each([
    ["127.0.0.1:4444", undefined, true],
    ["127.5.6.7", undefined, true],
    ["LOCALHOST", undefined, true],
    ["[::1]", undefined, true],
    ["localhost.evil.example", undefined, false],
    ["127.0.0.1.nip.io", undefined, false],
    ["0.0.0.0:4444", undefined, false],
    ["localhost", "https://ok.example", true],
    ["localhost", "HTTPS://OK.EXAMPLE", true],
    ["localhost", "https://ok.example.evil", false],
    ["localhost", "http://127.0.0.1:3000", true],
    ["localhost", "null", false],
    ["localhost", "not a url", false],
  ])("Host %s, Origin %s → %s", (host, origin, ok) => {
    expect(checkBrowserAccess(policy, host, origin).ok).toBe(ok);
  });

  it("accepts the configured listen address as a Host", () => {
    expect(checkBrowserAccess(browserPolicy([], "192.168.1.5"), "192.168.1.5:4444", undefined).ok).toBe(true);
    expect(checkBrowserAccess(browserPolicy([], "0.0.0.0"), "192.168.1.5:4444", undefined).ok).toBe(false);
  });

  it("parses GATEWAY_ALLOWED_ORIGINS", () => {
    expect(parseOriginList(" https://a.example/, ,HTTP://B.example:8080 ")).toEqual([
      "https://a.example",
      "http://b.example:8080",
    ]);
    expect(parseOriginList(undefined)).toEqual([]);
  });
});
