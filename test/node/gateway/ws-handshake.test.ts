/**
 * Unit tests of the WebSocket endpoint's pure rules: the upgrade decision, the startup-packet
 * check and the driver settings derived from the environment. No I/O.
 */
import { describe, expect, it } from "vitest";
import { browserPolicy } from "../../../src/dev/gateway/browser-policy.ts";
import { checkStartupPacket } from "../../../src/dev/gateway/pg-startup.ts";
import { checkUpgrade, parseAddress } from "../../../src/dev/gateway/ws-handshake.ts";
import { localNeonSettings, wsProxyFor } from "../../../src/shared/neon-local.ts";

const HANDSHAKE = {
  host: "127.0.0.1:4444",
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-version": "13",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
};
const LOOPBACK_ONLY: ReadonlySet<string> = new Set();
const POLICY = browserPolicy([], undefined);

describe("checkUpgrade", () => {
  it("accepts the driver's request and names the target", () => {
    expect(checkUpgrade("GET", "/v2?address=127.0.0.1:5432", HANDSHAKE, LOOPBACK_ONLY, POLICY)).toEqual({
      ok: true,
      target: { host: "127.0.0.1", port: 5432, label: "127.0.0.1:5432" },
    });
    expect(checkUpgrade("GET", "/v2?address=[::1]:6543", HANDSHAKE, LOOPBACK_ONLY, POLICY)).toMatchObject({
      ok: true,
      target: { host: "::1", port: 6543 },
    });
  });

  it.each([
    ["another path", "GET", "/v1?address=127.0.0.1:5432", {}, 404],
    ["POST", "POST", "/v2?address=127.0.0.1:5432", {}, 405],
    ["no Upgrade header", "GET", "/v2?address=127.0.0.1:5432", { upgrade: undefined }, 400],
    ["an old protocol version", "GET", "/v2?address=127.0.0.1:5432", { "sec-websocket-version": "8" }, 426],
    ["a malformed key", "GET", "/v2?address=127.0.0.1:5432", { "sec-websocket-key": "short" }, 400],
    ["a foreign Host", "GET", "/v2?address=127.0.0.1:5432", { host: "evil.example" }, 403],
    ["a foreign Origin", "GET", "/v2?address=127.0.0.1:5432", { origin: "https://evil.example" }, 403],
    ["no address", "GET", "/v2", {}, 400],
    ["a non-loopback target", "GET", "/v2?address=10.0.0.5:5432", {}, 403],
  ] as const)("refuses %s", (_name, method, url, headers, status) => {
    expect(checkUpgrade(method, url, { ...HANDSHAKE, ...headers }, LOOPBACK_ONLY, POLICY)).toMatchObject({
      ok: false,
      status,
    });
  });

  it("forwards to configured hosts, or anywhere when told", () => {
    const url = "/v2?address=db.internal:5432";
    expect(checkUpgrade("GET", url, HANDSHAKE, new Set(["db.internal"]), POLICY).ok).toBe(true);
    expect(checkUpgrade("GET", url, HANDSHAKE, "any", POLICY).ok).toBe(true);
  });
});

describe("parseAddress and the browser policy on upgrades", () => {
  it.each([null, "", "host", "host:", "host:0", "host:65536", "a:b:5432", "[::1]", "host:5432/x"])(
    "refuses the address %s",
    (value) => {
      expect(parseAddress(value)).toBeUndefined();
    },
  );

  it("accepts loopback origins and no origin, refuses others and 'null'", () => {
    for (const origin of [
      undefined,
      "http://localhost:5173",
      "http://127.0.0.1",
      "http://[::1]:3000",
      "http://a.localhost",
    ])
      expect(
        checkUpgrade("GET", "/v2?address=127.0.0.1:5432", { ...HANDSHAKE, origin }, LOOPBACK_ONLY, POLICY).ok,
      ).toBe(true);
    for (const origin of ["https://evil.example", "null", "http://127.0.0.1.evil.example"])
      expect(
        checkUpgrade("GET", "/v2?address=127.0.0.1:5432", { ...HANDSHAKE, origin }, LOOPBACK_ONLY, POLICY),
      ).toMatchObject({ ok: false, status: 403 });
  });
});

function packet(length: number, code: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setInt32(0, length);
  new DataView(bytes.buffer).setInt32(4, code);
  return bytes;
}

describe("checkStartupPacket", () => {
  it("accepts a StartupMessage and the special requests", () => {
    for (const code of [196608, 196610, 80877102, 80877103, 80877104])
      expect(checkStartupPacket(packet(40, code))).toBe("ok");
  });

  it("waits for 8 bytes before judging", () => {
    expect(checkStartupPacket(packet(40, 196608).subarray(0, 7))).toBe("more");
  });

  it("refuses other lengths and codes", () => {
    expect(checkStartupPacket(packet(4, 196608))).toHaveProperty("problem");
    expect(checkStartupPacket(packet(20_000, 196608))).toHaveProperty("problem");
    expect(checkStartupPacket(packet(40, 131072))).toHaveProperty("problem");
    expect(checkStartupPacket(new TextEncoder().encode("GET / HTTP/1.1\r\n"))).toHaveProperty("problem");
  });
});

describe("localNeonSettings", () => {
  it("derives the WebSocket endpoint from the HTTP one", () => {
    expect(wsProxyFor("http://127.0.0.1:4444/sql")).toBe("127.0.0.1:4444/v2");
    expect(wsProxyFor("http://localhost:4444/prefix/sql")).toBe("localhost:4444/prefix/v2");
    expect(localNeonSettings({ NEON_FETCH_ENDPOINT: "http://127.0.0.1:4444/sql" })).toEqual({
      fetchEndpoint: "http://127.0.0.1:4444/sql",
      wsProxy: "127.0.0.1:4444/v2",
      useSecureWebSocket: false,
      pipelineTLS: false,
      pipelineConnect: false,
    });
  });

  it("takes NEON_WS_PROXY as given, without a scheme", () => {
    expect(localNeonSettings({ NEON_WS_PROXY: "ws://127.0.0.1:9999/v2" })).toMatchObject({
      fetchEndpoint: undefined,
      wsProxy: "127.0.0.1:9999/v2",
    });
  });

  it("changes nothing when neither variable is set (production goes to Neon)", () => {
    expect(localNeonSettings({})).toBeUndefined();
    expect(localNeonSettings({ NEON_FETCH_ENDPOINT: "", NEON_WS_PROXY: "" })).toBeUndefined();
  });
});
