/**
 * Tenant tokens must say they are access tokens (issue 16, finding 8; RFC 8725 §3.11): a `typ`
 * header of `JWT` or `at+jwt` (RFC 9068 §2.1), in any case, with or without `application/`. A
 * token signed with the right key but with no `typ`, or with another one (an ID or logout token's),
 * is 401 `invalid_token`. Each token is otherwise valid: only the header differs.
 */
import { env } from "cloudflare:test";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { isAcceptedType, TENANT_TOKEN_TYPES } from "../../src/worker/auth/verify.ts";
import { call, seedKv } from "./support.ts";

beforeAll(seedKv);

async function tokenWithType(typ: string | undefined): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tenant: "acme" })
    .setProtectedHeader({ alg: "HS256", ...(typ === undefined ? {} : { typ }) })
    .setIssuer(env.JWT_ISSUER)
    .setAudience(env.JWT_AUDIENCE)
    .setSubject("typ-tester")
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(new TextEncoder().encode(env.JWT_SECRET));
}

/** An authenticated route: 404 for an unknown cart means the token was accepted. */
const probe = async (typ: string | undefined) =>
  call(`http://acme.localhost/api/carts/${crypto.randomUUID()}`, { token: await tokenWithType(typ) });

describe("the typ header of tenant tokens", () => {
  it.each(["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "application/jwt"])(
    "%s is accepted",
    async (typ) => {
      expect((await probe(typ)).status).toBe(404);
    },
  );

  it.each([undefined, "", "logout+jwt", "secevent+jwt", "id_token", "JWS", "application/x-jwt"])(
    "%s is refused with 401 invalid_token",
    async (typ) => {
      const response = await probe(typ);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { code: string }).code).toBe("unauthorized");
      expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    },
  );

  it("isAcceptedType", () => {
    expect(isAcceptedType("Application/AT+JWT", TENANT_TOKEN_TYPES)).toBe(true);
    expect(isAcceptedType(["JWT"], TENANT_TOKEN_TYPES)).toBe(false);
    expect(isAcceptedType("at+jwt", ["jwt"])).toBe(false);
  });
});
