/**
 * The JWT matrix on an authenticated route (`POST /api/carts` on acme.localhost): every token that is
 * missing, unsigned, signed with another algorithm or key, or carries the wrong claims is 401
 * `unauthorized` with a Bearer challenge (RFC 6750 §3); a valid token of another tenant is 403
 * `tenant_mismatch`. Codes and statuses only, never message wording.
 */
import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT, UnsecuredJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { call, seedKv } from "./support.ts";

const url = "http://acme.localhost/api/carts";
const secret = () => new TextEncoder().encode(env.JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

interface Claims extends JWTPayload {
  tenant?: unknown;
}

/** The claims of a valid acme token; `overrides` replaces or (with `undefined`) removes claims. */
function claims(overrides: Partial<Record<keyof Claims, unknown>> = {}): JWTPayload {
  const base: Record<string, unknown> = {
    iss: env.JWT_ISSUER,
    aud: env.JWT_AUDIENCE,
    sub: "alice",
    tenant: "acme",
    iat: now(),
    exp: now() + 600,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base as JWTPayload;
}

function hs(payload: JWTPayload, alg = "HS256", key: Uint8Array = secret()): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: "JWT" }).sign(key);
}

const b64url = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** An HS256 token of `payload` with the header and signature of a valid token (a forged payload). */
async function forgedPayload(payload: JWTPayload): Promise<string> {
  const [header, , signature] = (await hs(claims())).split(".");
  return `${header}.${b64url(JSON.stringify(payload))}.${signature}`;
}

interface AuthCase {
  readonly name: string;
  /** Request headers and query string to send. */
  readonly request: () => Promise<{ headers?: Record<string, string>; query?: string }>;
  /**
   * `missing`: no bearer credentials at all, so no `error` in the challenge (RFC 6750 §3.1);
   * `invalid_token`: a bearer token that was refused; `any`: a malformed header, where the challenge
   * may say either (RFC 6750 would allow `invalid_request`), so only the scheme is checked.
   */
  readonly challenge: "missing" | "invalid_token" | "any";
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

const unauthorized: readonly AuthCase[] = [
  { name: "no Authorization header", request: async () => ({}), challenge: "missing" },
  { name: "empty Bearer", request: async () => ({ headers: { authorization: "Bearer " } }), challenge: "any" },
  { name: "Bearer without a space", request: async () => ({ headers: { authorization: "Bearer" } }), challenge: "any" },
  {
    name: "Basic credentials",
    request: async () => ({ headers: { authorization: `Basic ${btoa("alice:password")}` } }),
    challenge: "missing",
  },
  {
    name: "a valid token under another scheme",
    request: async () => ({ headers: { authorization: `Token ${await hs(claims())}` } }),
    challenge: "missing",
  },
  {
    name: "a valid token with trailing garbage",
    request: async () => ({ headers: { authorization: `Bearer ${await hs(claims())} extra` } }),
    challenge: "any",
  },
  {
    name: "two Bearer tokens in one header",
    request: async () => ({ headers: { authorization: `Bearer ${await hs(claims())}, Bearer ${await hs(claims())}` } }),
    challenge: "any",
  },
  {
    name: "a valid token as the access_token query parameter",
    request: async () => ({ query: `?access_token=${await hs(claims())}` }),
    challenge: "missing",
  },
  {
    name: "a valid token as a token query parameter and in a cookie",
    request: async () => {
      const t = await hs(claims());
      return { query: `?token=${t}&jwt=${t}`, headers: { cookie: `token=${t}; access_token=${t}` } };
    },
    challenge: "missing",
  },
  {
    name: "alg none (unsecured JWT)",
    request: async () => bearer(new UnsecuredJWT(claims()).encode()),
    challenge: "invalid_token",
  },
  {
    name: "alg none with a valid token's signature attached",
    request: async () => {
      const [, payload, signature] = (await hs(claims())).split(".");
      return bearer(`${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${payload}.${signature}`);
    },
    challenge: "invalid_token",
  },
  {
    name: "alg NONE in capitals",
    request: async () => {
      const [, payload] = (await hs(claims())).split(".");
      return bearer(`${b64url(JSON.stringify({ alg: "NONE" }))}.${payload}.`);
    },
    challenge: "invalid_token",
  },
  {
    name: "HS512 with the right secret",
    request: async () => bearer(await hs(claims(), "HS512")),
    challenge: "invalid_token",
  },
  {
    name: "HS384 with the right secret",
    request: async () => bearer(await hs(claims(), "HS384")),
    challenge: "invalid_token",
  },
  {
    name: "RS256 signed with a generated key pair",
    request: async () => {
      const { privateKey } = await generateKeyPair("RS256");
      return bearer(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256" }).sign(privateKey));
    },
    challenge: "invalid_token",
  },
  {
    name: "ES256 signed with a generated key pair",
    request: async () => {
      const { privateKey } = await generateKeyPair("ES256");
      return bearer(await new SignJWT(claims()).setProtectedHeader({ alg: "ES256" }).sign(privateKey));
    },
    challenge: "invalid_token",
  },
  {
    name: "RS256 with its own public key embedded in the header (jwk injection)",
    request: async () => {
      const { privateKey, publicKey } = await generateKeyPair("RS256");
      const jwk = await exportJWK(publicKey);
      return bearer(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", jwk }).sign(privateKey));
    },
    challenge: "invalid_token",
  },
  {
    name: "HS256 with the wrong key",
    request: async () => bearer(await hs(claims(), "HS256", crypto.getRandomValues(new Uint8Array(32)))),
    challenge: "invalid_token",
  },
  {
    name: "HS256 with the secret plus one byte",
    request: async () => bearer(await hs(claims(), "HS256", new TextEncoder().encode(`${env.JWT_SECRET}x`))),
    challenge: "invalid_token",
  },
  {
    name: "a valid token's signature on a forged payload (tenant globex)",
    request: async () => bearer(await forgedPayload(claims({ tenant: "globex" }))),
    challenge: "invalid_token",
  },
  {
    name: "a valid token's signature on a forged payload (sub admin)",
    request: async () => bearer(await forgedPayload(claims({ sub: "admin" }))),
    challenge: "invalid_token",
  },
  {
    name: "a valid token with its signature cut off",
    request: async () => bearer((await hs(claims())).split(".").slice(0, 2).join(".").concat(".")),
    challenge: "invalid_token",
  },
  {
    name: "wrong issuer",
    request: async () => bearer(await hs(claims({ iss: "https://evil.example" }))),
    challenge: "invalid_token",
  },
  {
    name: "missing issuer",
    request: async () => bearer(await hs(claims({ iss: undefined }))),
    challenge: "invalid_token",
  },
  {
    name: "wrong audience",
    request: async () => bearer(await hs(claims({ aud: "another-api" }))),
    challenge: "invalid_token",
  },
  {
    name: "missing audience",
    request: async () => bearer(await hs(claims({ aud: undefined }))),
    challenge: "invalid_token",
  },
  {
    name: "expired beyond the clock tolerance",
    request: async () => bearer(await hs(claims({ iat: now() - 3600, exp: now() - 60 }))),
    challenge: "invalid_token",
  },
  {
    name: "not yet valid (nbf in the future)",
    request: async () => bearer(await hs(claims({ nbf: now() + 3600 }))),
    challenge: "invalid_token",
  },
  {
    name: "missing exp",
    request: async () => bearer(await hs(claims({ exp: undefined }))),
    challenge: "invalid_token",
  },
  {
    name: "exp as a string",
    request: async () => bearer(await hs(claims({ exp: String(now() + 600) }))),
    challenge: "invalid_token",
  },
  {
    name: "missing sub",
    request: async () => bearer(await hs(claims({ sub: undefined }))),
    challenge: "invalid_token",
  },
  { name: "empty sub", request: async () => bearer(await hs(claims({ sub: "" }))), challenge: "invalid_token" },
  {
    name: "missing tenant claim",
    request: async () => bearer(await hs(claims({ tenant: undefined }))),
    challenge: "invalid_token",
  },
  {
    name: "tenant claim as an array",
    request: async () => bearer(await hs(claims({ tenant: ["acme"] }))),
    challenge: "invalid_token",
  },
  { name: "garbled: a random string", request: async () => bearer("thisisnotajwtatall"), challenge: "invalid_token" },
  {
    name: "garbled: two segments",
    request: async () => bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"),
    challenge: "invalid_token",
  },
  {
    name: "garbled: four segments",
    request: async () => bearer(`${await hs(claims())}.AAAA`),
    challenge: "invalid_token",
  },
  { name: "garbled: five segments (JWE shape)", request: async () => bearer("a.b.c.d.e"), challenge: "invalid_token" },
  { name: "garbled: empty segments", request: async () => bearer(".."), challenge: "invalid_token" },
  { name: "garbled: bad base64 in every segment", request: async () => bearer("@@@.!!!.###"), challenge: "any" },
  {
    name: "garbled: base64 that is not JSON",
    request: async () => bearer("Zm9v.YmFy.YmF6"),
    challenge: "invalid_token",
  },
  {
    name: "garbled: huge token (256 KiB)",
    request: async () => bearer(`${"A".repeat(128 * 1024)}.${"B".repeat(128 * 1024)}.c`),
    challenge: "invalid_token",
  },
];

beforeAll(seedKv);

function send(request: { headers?: Record<string, string>; query?: string }): Promise<Response> {
  return call(`${url}${request.query ?? ""}`, { method: "POST", headers: request.headers ?? {} });
}

async function expectCode(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const body = (await response.json()) as { code: string; status: number; type: string; title: string };
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
}

describe("fetch: tokens that are missing or invalid are 401 unauthorized", () => {
  it.each(unauthorized)("$name → 401", async ({ request, challenge }) => {
    const response = await send(await request());
    const wwwAuthenticate = response.headers.get("www-authenticate") ?? "";
    await expectCode(response, 401, "unauthorized");
    expect(wwwAuthenticate).toMatch(/^Bearer\b/);
    expect(wwwAuthenticate).toMatch(/realm="[^"]+"/);
    if (challenge === "invalid_token") expect(wwwAuthenticate).toContain('error="invalid_token"');
    if (challenge === "missing") expect(wwwAuthenticate).not.toContain("error=");
  });
});

describe("fetch: a valid token of another tenant is 403 tenant_mismatch", () => {
  it.each([
    ["globex", "globex"],
    ["initech", "initech"],
    ["a tenant that does not exist", "nobody"],
    ["acme in capitals", "ACME"],
    ["acme with a trailing space", "acme "],
  ])("tenant claim of %s → 403", async (_name, tenant) => {
    const response = await send(bearer(await hs(claims({ tenant }))));
    await expectCode(response, 403, "tenant_mismatch");
  });
});

describe("fetch: valid tokens are accepted", () => {
  it("a valid HS256 token → 201", async () => {
    const response = await send(bearer(await hs(claims())));
    expect(response.status).toBe(201);
    const body = (await response.json()) as { id: string; status: string; items: unknown[] };
    expect(body.status).toBe("open");
    expect(body.items).toEqual([]);
  });

  it("the scheme is case-insensitive (RFC 7235 §2.1): `bearer` → 201", async () => {
    const response = await send({ headers: { authorization: `bearer ${await hs(claims())}` } });
    expect(response.status).toBe(201);
  });

  it("an audience array that contains the audience → 201", async () => {
    const response = await send(bearer(await hs(claims({ aud: ["other-api", env.JWT_AUDIENCE] }))));
    expect(response.status).toBe(201);
  });

  it("expired by less than the clock tolerance → 201", async () => {
    const response = await send(bearer(await hs(claims({ iat: now() - 600, exp: now() - 1 }))));
    expect(response.status).toBe(201);
  });

  it("the cart belongs to the token's subject: another subject cannot read it", async () => {
    const created = await send(bearer(await hs(claims({ sub: "carol" }))));
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const own = await call(`http://acme.localhost/api/carts/${id}`, { token: await hs(claims({ sub: "carol" })) });
    expect(own.status).toBe(200);
    const other = await call(`http://acme.localhost/api/carts/${id}`, { token: await hs(claims({ sub: "dave" })) });
    await expectCode(other, 404, "not_found");
  });
});
