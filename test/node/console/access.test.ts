/**
 * The console behind Cloudflare Access (the production sign-in), over HTTP: the Worker in miniflare
 * with ACCESS_TEAM_DOMAIN / ACCESS_AUD / ACCESS_SCOPES set, the team's JWKS endpoint faked at the
 * Worker's outbound edge (the one external API here), and assertions signed as Access signs them
 * (RS256, iss = the team domain, aud = the application's AUD tag). No browser: Access is headers.
 */
import { desc, eq } from "drizzle-orm";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog, tenants } from "../../../src/control/schema.ts";
import { createTenant } from "../../../src/control/tenants/create.ts";
import { gatewayUrl, postgresUrl, superuser } from "../support.ts";
import { type Answer, type SendInit, type ServedWorker, serveWorker } from "./harness.ts";

const TAG = `ax${Math.random().toString(36).slice(2, 6)}`;
const TEAM = "tenantry-test.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const SHOP = `${TAG}-shop`;
const OPS = "ops@example.com";
const VIEWER = "viewer@example.com";

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

let worker: ServedWorker;
let signingKey: PrivateKey;
let strangerKey: PrivateKey;
let jwk: JWK;
let jwksFetches = 0;

/** An Access application token: what Access puts in Cf-Access-Jwt-Assertion. */
async function assertion(email: string, over: { key?: PrivateKey; aud?: string; iss?: string } = {}) {
  return new SignJWT({ email, type: "app", country: "CH" })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuer(over.iss ?? `https://${TEAM}`)
    .setAudience(over.aud ?? AUD)
    .setSubject(`sub-${email}`)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(over.key ?? signingKey);
}

const adminHost = () => new URL(worker.adminOrigin).hostname;

async function asAccess(email: string, path: string, init: SendInit = {}): Promise<Answer> {
  return worker.send(adminHost(), path, {
    ...init,
    headers: { "cf-access-jwt-assertion": await assertion(email), ...init.headers },
  });
}

const cookieOf = (answer: Answer) => String(answer.headers["set-cookie"] ?? "").split(";")[0] ?? "";
const csrfOf = (html: string) => /name="_csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? "";

async function status(slug: string) {
  const [row] = await worker.deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  return row?.status;
}

/** The tenant page as `email` sees it, then its suspend form posted with that session. */
async function suspendAs(email: string): Promise<Answer> {
  const page = await asAccess(email, `/tenants/${SHOP}`);
  expect(page.status).toBe(200);
  return asAccess(email, `/tenants/${SHOP}/suspend`, {
    method: "POST",
    headers: {
      cookie: cookieOf(page),
      "content-type": "application/x-www-form-urlencoded",
      origin: worker.adminOrigin,
      "sec-fetch-site": "same-origin",
    },
    body: new URLSearchParams({ _csrf: csrfOf(page.body) }).toString(),
  });
}

describe("operator console behind Cloudflare Access", () => {
  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    signingKey = pair.privateKey;
    strangerKey = (await generateKeyPair("RS256")).privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    worker = await serveWorker({
      postgresUrl: postgresUrl(),
      gatewayUrl: gatewayUrl(),
      controlName: `tenantry_control_${TAG}`,
      vars: {
        ACCESS_TEAM_DOMAIN: TEAM,
        ACCESS_AUD: AUD,
        ACCESS_SCOPES: JSON.stringify({ [OPS]: ["tenants:read", "tenants:write"], "*": ["tenants:read"] }),
      },
      outbound: (url) => {
        if (url.origin !== `https://${TEAM}`) return undefined;
        if (url.pathname !== "/cdn-cgi/access/certs") return new Response("not found", { status: 404 });
        jwksFetches++;
        return Response.json({ keys: [jwk] });
      },
    });
    await createTenant(worker.deps, { slug: SHOP, region: "local" });
  }, 300_000);

  afterAll(async () => {
    await worker?.stop();
    await superuser(async (client) => {
      const name = `tenant_${SHOP.replaceAll("-", "_")}`;
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS "${name}_app"`);
      await client.query(`DROP DATABASE IF EXISTS "tenantry_control_${TAG}" WITH (FORCE)`);
    }).catch(() => undefined);
  }, 120_000);

  it("lets in a valid Access assertion, fetching the team's JWKS, and starts a session for that email", async () => {
    const page = await asAccess(OPS, "/");
    expect(page.status).toBe(200);
    expect(page.body).toContain(OPS);
    expect(jwksFetches).toBeGreaterThan(0);
    expect(String(page.headers["set-cookie"])).toMatch(/^__Host-tenantry-console=.*HttpOnly.*Secure.*SameSite=Strict/i);
  });

  it("refuses requests without an assertion, or with one Access did not sign for this application", async () => {
    const host = adminHost();
    const none = await worker.send(host, "/");
    expect(none.status).toBe(401);
    const cases = [
      await assertion(OPS, { key: strangerKey }),
      await assertion(OPS, { aud: "another-application" }),
      await assertion(OPS, { iss: "https://other-team.cloudflareaccess.com" }),
      "not-a-jwt",
    ];
    for (const token of cases) {
      const answer = await worker.send(host, "/", { headers: { "cf-access-jwt-assertion": token } });
      expect(answer.status, token.slice(0, 20)).toBe(401);
      expect(answer.body).not.toContain(OPS);
    }
    // A session cookie alone is not enough behind Access: every request needs the assertion.
    const signedIn = await asAccess(OPS, "/");
    const cookieOnly = await worker.send(host, "/", { headers: { cookie: cookieOf(signedIn) } });
    expect(cookieOnly.status).toBe(401);
  });

  it("turns the dev token sign-in off", async () => {
    const form = await worker.send(adminHost(), "/sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "token=x",
    });
    expect(form.status).toBe(404);
  });

  it("maps identities to scopes: the read-only viewer's suspend is 403, the operator's goes through and is audited", async () => {
    const refused = await suspendAs(VIEWER);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('id="error-code">forbidden<');
    expect(await status(SHOP)).toBe("active");

    const done = await suspendAs(OPS);
    expect(done.status).toBe(303);
    expect(await status(SHOP)).toBe("suspended");
    const [last] = await worker.deps.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "tenant.suspend"))
      .orderBy(desc(auditLog.id))
      .limit(1);
    expect(last?.actor).toBe(OPS);
  });
});
