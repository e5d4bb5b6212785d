/**
 * Who may use the admin API: only requests for ADMIN_HOST, only with an admin token (its own issuer
 * and audience, unexpired, correctly signed), and only for actions its `scope` claim covers. On a
 * tenant host the admin paths are just unknown routes. Refusals never reveal or change anything.
 */
import { env } from "cloudflare:test";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ADMIN_SCOPES,
  type AdminScope,
  ALL_ADMIN_SCOPES,
  mintAdminToken,
  mintTenantToken,
} from "../../src/shared/tokens.ts";
import { adminResources } from "../../src/worker/admin/app.ts";
import { scopeOf } from "../../src/worker/admin/auth.ts";
import { call, json, seedKv, token } from "./support.ts";

interface Problem {
  status: number;
  code: string;
}

const ADMIN = "http://admin.localhost";

const adminToken = (scope: string, overrides: { sub?: string; ttlSeconds?: number; secret?: string } = {}) =>
  mintAdminToken({
    secret: overrides.secret ?? (env.ADMIN_JWT_SECRET as string),
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub: overrides.sub ?? "auth-ops",
    scope,
    ...(overrides.ttlSeconds === undefined ? {} : { ttlSeconds: overrides.ttlSeconds }),
  });

async function problem(response: Response, status: number, code: string): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const parsed = JSON.parse(text) as Problem;
  expect(parsed.code).toBe(code);
  // A refusal never carries tenant data.
  expect(text).not.toMatch(/"items"|ten_[0-9a-f]{20}|postgres(ql)?:\/\//);
  return parsed;
}

/** Every admin request the tests try, by the scope it needs. */
const actions = [
  { name: "list tenants", scope: "tenants:read", method: "GET", path: "/v1/tenants" },
  { name: "show a tenant", scope: "tenants:read", method: "GET", path: "/v1/tenants/acme" },
  { name: "read the audit log", scope: "tenants:read", method: "GET", path: "/v1/audit" },
  {
    name: "create a tenant",
    scope: "tenants:write",
    method: "POST",
    path: "/v1/tenants",
    body: { slug: "au-intruder", region: "local", domains: ["shop.au-intruder.localhost"] },
  },
  { name: "suspend a tenant", scope: "tenants:write", method: "POST", path: "/v1/tenants/acme/suspend" },
  { name: "resume a tenant", scope: "tenants:write", method: "POST", path: "/v1/tenants/acme/resume" },
  { name: "retry onboarding", scope: "tenants:write", method: "POST", path: "/v1/tenants/acme/retry" },
  {
    name: "add a domain",
    scope: "tenants:write",
    method: "POST",
    path: "/v1/tenants/acme/domains",
    body: { domain: "stolen.au.localhost" },
  },
  { name: "show domain status", scope: "tenants:read", method: "GET", path: "/v1/tenants/acme/domains" },
  {
    name: "verify a domain",
    scope: "tenants:write",
    method: "POST",
    path: "/v1/tenants/acme/domains/acme.localhost/verify",
  },
  {
    name: "remove a domain",
    scope: "tenants:write",
    method: "DELETE",
    path: "/v1/tenants/acme/domains/acme.localhost",
  },
  { name: "reconcile KV", scope: "tenants:write", method: "POST", path: "/v1/reconcile" },
  { name: "delete a tenant", scope: "tenants:delete", method: "DELETE", path: "/v1/tenants/acme?confirm=acme" },
] as const;

type Action = (typeof actions)[number];

function send(action: Action, host: string, bearer?: string): Promise<Response> {
  const init = "body" in action ? json(action.body) : {};
  return call(`http://${host}${action.path}`, {
    ...init,
    method: action.method,
    ...(bearer ? { token: bearer } : {}),
  });
}

/** acme is untouched: still active, still on its domain, still serving its products. */
async function acmeIntact(): Promise<void> {
  const shown = await call(`${ADMIN}/v1/tenants/acme`, { token: await adminToken("tenants:read") });
  expect(shown.status).toBe(200);
  expect(await shown.json()).toMatchObject({ slug: "acme", status: "active", domains: ["acme.localhost"] });
  const products = await call("http://acme.localhost/api/products");
  expect(products.status).toBe(200);
  expect(await call("http://stolen.au.localhost/api/products").then((r) => r.status)).toBe(404);
  const intruder = await call(`${ADMIN}/v1/tenants/au-intruder`, { token: await adminToken("tenants:read") });
  expect(intruder.status).toBe(404);
}

beforeAll(seedKv);

describe("admin API only on the admin host", () => {
  it.each(actions)("$name on a tenant host with an all-scopes admin token → 404, not a route there", async (action) => {
    const all = await adminToken(ALL_ADMIN_SCOPES);
    for (const host of ["acme.localhost", "globex.tenantry.localhost", "shop.initech.localhost"]) {
      await problem(await send(action, host, all), 404, "not_found");
    }
  });

  it("an unknown host, or an admin-like host, does not reach the admin API either", async () => {
    const all = await adminToken(ALL_ADMIN_SCOPES);
    for (const host of ["admin.localhost.evil.localhost", "admin.tenantry.localhost", "xadmin.localhost"]) {
      const response = await call(`http://${host}/v1/tenants`, { token: all });
      expect(response.status).toBe(404);
      expect(((await response.json()) as Problem).code).toBe("tenant_not_found");
    }
  });

  it("the OpenAPI document is not served on tenant hosts", async () => {
    await problem(await call("http://acme.localhost/openapi.json"), 404, "not_found");
  });

  it("nothing was changed by the attempts", acmeIntact);
});

describe("admin API authentication", () => {
  it.each(actions)("$name without a token → 401 with WWW-Authenticate", async (action) => {
    const response = await send(action, "admin.localhost");
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="tenantry-admin"/);
    await problem(response, 401, "unauthorized");
  });

  it.each(actions)("$name with a tenant token → 401", async (action) => {
    const response = await send(action, "admin.localhost", await token("acme", "alice"));
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    await problem(response, 401, "unauthorized");
  });

  it("a tenant token that even carries admin scopes is refused (wrong issuer and audience)", async () => {
    const scoped = await mintTenantToken({
      secret: env.JWT_SECRET as string,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      tenant: "acme",
      sub: "alice",
      scope: ALL_ADMIN_SCOPES,
    });
    await problem(await call(`${ADMIN}/v1/tenants`, { token: scoped }), 401, "unauthorized");
  });

  it("a tenant token signed with the admin secret is still refused (wrong issuer and audience)", async () => {
    const forged = await mintTenantToken({
      secret: env.ADMIN_JWT_SECRET as string,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      tenant: "acme",
      sub: "alice",
      scope: ALL_ADMIN_SCOPES,
    });
    await problem(await call(`${ADMIN}/v1/tenants`, { token: forged }), 401, "unauthorized");
  });

  it("an expired admin token → 401 invalid_token", async () => {
    const expired = await adminToken(ALL_ADMIN_SCOPES, { ttlSeconds: -600 });
    const response = await call(`${ADMIN}/v1/tenants`, { token: expired });
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    await problem(response, 401, "unauthorized");
  });

  it("an admin token signed with another secret → 401", async () => {
    const wrong = await adminToken(ALL_ADMIN_SCOPES, { secret: "not-the-admin-secret-but-long-enough-0123456789" });
    await problem(await call(`${ADMIN}/v1/tenants`, { token: wrong }), 401, "unauthorized");
  });

  it("an admin token for another audience or issuer → 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const key = new TextEncoder().encode(env.ADMIN_JWT_SECRET);
    const sign = (issuer: string, audience: string) =>
      new SignJWT({ scope: ALL_ADMIN_SCOPES })
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("auth-ops")
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(key);
    await problem(
      await call(`${ADMIN}/v1/tenants`, { token: await sign(env.ADMIN_JWT_ISSUER, "someone-else") }),
      401,
      "unauthorized",
    );
    await problem(
      await call(`${ADMIN}/v1/tenants`, { token: await sign("https://evil.example", env.ADMIN_JWT_AUDIENCE) }),
      401,
      "unauthorized",
    );
  });

  it("an admin token without exp, or without a scope claim → 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const key = new TextEncoder().encode(env.ADMIN_JWT_SECRET);
    const noExp = await new SignJWT({ scope: ALL_ADMIN_SCOPES })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(env.ADMIN_JWT_ISSUER)
      .setAudience(env.ADMIN_JWT_AUDIENCE)
      .setSubject("auth-ops")
      .setIssuedAt(now)
      .sign(key);
    await problem(await call(`${ADMIN}/v1/tenants`, { token: noExp }), 401, "unauthorized");
    const noScope = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(env.ADMIN_JWT_ISSUER)
      .setAudience(env.ADMIN_JWT_AUDIENCE)
      .setSubject("auth-ops")
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(key);
    await problem(await call(`${ADMIN}/v1/tenants`, { token: noScope }), 401, "unauthorized");
  });

  it("an unsigned (alg none) admin token → 401", async () => {
    const encode = (value: object) =>
      btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${encode({ alg: "none", typ: "JWT" })}.${encode({
      iss: env.ADMIN_JWT_ISSUER,
      aud: env.ADMIN_JWT_AUDIENCE,
      sub: "auth-ops",
      scope: ALL_ADMIN_SCOPES,
      iat: now,
      exp: now + 600,
    })}.`;
    await problem(await call(`${ADMIN}/v1/tenants`, { token: unsigned }), 401, "unauthorized");
  });

  it("nothing was changed by the attempts", acmeIntact);
});

describe("admin API scopes", () => {
  const lacking = (action: Action) =>
    [
      "",
      "tenants:read",
      "fleet:run exports:read",
      "tenants:write",
      "tenants:delete",
      // Scope names are exact: no prefixes, no wildcards, no case folding.
      "tenants tenants:* TENANTS:WRITE TENANTS:DELETE TENANTS:READ",
    ].filter((scope) => !scope.split(" ").includes(action.scope));

  it.each(actions)("$name without $scope → 403 forbidden", async (action) => {
    for (const scope of lacking(action)) {
      const response = await send(action, "admin.localhost", await adminToken(scope));
      expect(response.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
      await problem(response, 403, "forbidden");
    }
  });

  it("tenants:read may read but not create, suspend or delete", async () => {
    const reader = await adminToken("tenants:read");
    expect((await call(`${ADMIN}/v1/tenants`, { token: reader })).status).toBe(200);
    expect((await call(`${ADMIN}/v1/tenants/acme`, { token: reader })).status).toBe(200);
    await problem(
      await call(`${ADMIN}/v1/tenants`, { ...json({ slug: "au-reader", region: "local" }), token: reader }),
      403,
      "forbidden",
    );
    await problem(await call(`${ADMIN}/v1/tenants/acme/suspend`, { method: "POST", token: reader }), 403, "forbidden");
    await problem(
      await call(`${ADMIN}/v1/tenants/acme?confirm=acme`, { method: "DELETE", token: reader }),
      403,
      "forbidden",
    );
    expect((await call(`${ADMIN}/v1/tenants/au-reader`, { token: reader })).status).toBe(404);
  });

  it("exports:read may list exports but neither queue one nor mint a download link", async () => {
    const reader = await adminToken("tenants:read exports:read");
    const listed = await call(`${ADMIN}/v1/tenants/acme/exports`, { token: reader });
    expect(listed.status).toBe(200);
    const linkFor = (await listed.json()) as { items: { id: string }[] };
    const id = linkFor.items[0]?.id ?? "au-nobody";
    for (const path of ["/v1/tenants/acme/exports", `/v1/exports/${id}/link`]) {
      const refused = await call(`${ADMIN}${path}`, { method: "POST", token: reader });
      expect(refused.headers.get("www-authenticate")).toContain('scope="exports:create"');
      await problem(refused, 403, "forbidden");
    }
    // exports:create gets past the check (an unknown export: 404).
    const creator = await adminToken("exports:create");
    await problem(
      await call(`${ADMIN}/v1/exports/au-nobody/link`, { method: "POST", token: creator }),
      404,
      "not_found",
    );
  });

  it("tenants:write may create and suspend, but cannot delete without tenants:delete", async () => {
    const writer = await adminToken("tenants:read tenants:write");
    const created = await call(`${ADMIN}/v1/tenants`, {
      ...json({ slug: "au-writer", region: "local", domains: ["shop.au-writer.localhost"] }),
      token: writer,
    });
    expect(created.status).toBe(201);
    const suspend = await call(`${ADMIN}/v1/tenants/au-writer/suspend`, { method: "POST", token: writer });
    expect(suspend.status).toBe(200);
    await problem(await call("http://shop.au-writer.localhost/api/products"), 403, "tenant_suspended");
    const resume = await call(`${ADMIN}/v1/tenants/au-writer/resume`, { method: "POST", token: writer });
    expect(resume.status).toBe(200);
    await problem(
      await call(`${ADMIN}/v1/tenants/au-writer?confirm=au-writer`, { method: "DELETE", token: writer }),
      403,
      "forbidden",
    );
    expect((await call("http://shop.au-writer.localhost/api/products")).status).toBe(200);

    // tenants:delete alone is enough to delete (and only to delete).
    const deleter = await adminToken("tenants:delete");
    await problem(await call(`${ADMIN}/v1/tenants`, { token: deleter }), 403, "forbidden");
    const deleted = await call(`${ADMIN}/v1/tenants/au-writer?confirm=au-writer`, { method: "DELETE", token: deleter });
    expect(deleted.status).toBe(200);
    expect(((await deleted.json()) as { status: string }).status).toBe("deleted");
    await problem(await call("http://shop.au-writer.localhost/api/products"), 404, "tenant_not_found");
  });

  it("nothing was changed by the refused attempts", acmeIntact);
});

/**
 * The scope of every admin route. A new route must be added here with the scope it needs, and a
 * changed scope shows up as a changed line: both are reviewed decisions, not side effects.
 */
const ROUTE_SCOPES: Record<string, AdminScope> = {
  "GET /v1/tenants": "tenants:read",
  "POST /v1/tenants": "tenants:write",
  "GET /v1/tenants/{slug}": "tenants:read",
  "POST /v1/tenants/{slug}/retry": "tenants:write",
  "POST /v1/tenants/{slug}/suspend": "tenants:write",
  "POST /v1/tenants/{slug}/resume": "tenants:write",
  "DELETE /v1/tenants/{slug}": "tenants:delete",
  "POST /v1/tenants/{slug}/domains": "tenants:write",
  "GET /v1/tenants/{slug}/domains": "tenants:read",
  "POST /v1/tenants/{slug}/domains/{domain}/verify": "tenants:write",
  "DELETE /v1/tenants/{slug}/domains/{domain}": "tenants:write",
  "POST /v1/reconcile": "tenants:write",
  "GET /v1/reconcile": "tenants:read",
  "GET /v1/keys": "tenants:read",
  "POST /v1/keys/reencrypt": "tenants:write",
  "GET /v1/audit": "tenants:read",
  "POST /v1/tenants/{slug}/exports": "exports:create",
  "GET /v1/tenants/{slug}/exports": "exports:read",
  "GET /v1/exports/{id}": "exports:read",
  "POST /v1/exports/{id}/link": "exports:create",
  "GET /v1/migrations/status": "tenants:read",
  "POST /v1/migrations/runs": "fleet:run",
  "GET /v1/migrations/runs/{id}": "tenants:read",
  "POST /v1/migrations/runs/{id}/resume": "fleet:run",
  "POST /v1/migrations/runs/{id}/cancel": "fleet:run",
};

/** Every route the admin app mounts, from the routers' own route tables, with the scope it declares. */
const routes = adminResources
  .flatMap((resource) => Object.values(resource.routes))
  .map((route) => ({ route: `${route.method.toUpperCase()} ${route.path}`, scope: scopeOf(route) }));

/**
 * One request to `route` that changes nothing even when allowed: an unknown tenant, export or run,
 * `limit=0` (below every list's minimum) and a body no route accepts, so with its scope a route
 * answers 404 or 422. The one exception is POST /v1/reconcile, which rewrites this file's KV from
 * the control database (KV is re-seeded after these tests).
 */
function probe(route: string, bearer: string): Promise<Response> {
  const [method = "", template = ""] = route.split(" ");
  const path = template
    .replace("{slug}", "au-nobody")
    .replace("{id}", "au-nobody")
    .replace("{domain}", "nobody.au.localhost");
  const body = method === "POST" ? json({ auProbe: true }) : {};
  return call(`${ADMIN}${path}?limit=0`, { ...body, method, token: bearer });
}

describe("every admin route checks its scope", () => {
  afterAll(seedKv);

  it("each route in the OpenAPI document is in a router's route table and declares the scope listed above", async () => {
    const response = await call(`${ADMIN}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.map(({ route }) => route).sort()).toEqual(documented.sort());
    expect(Object.fromEntries(routes.map(({ route, scope }) => [route, scope]))).toEqual(ROUTE_SCOPES);
  });

  it.each(routes)("$route without $scope → 403 forbidden, before its input is validated", async ({ route, scope }) => {
    // No scope at all, and every scope but the one the route needs.
    for (const granted of ["", ADMIN_SCOPES.filter((other) => other !== scope).join(" ")]) {
      const response = await probe(route, await adminToken(granted));
      expect(response.headers.get("www-authenticate")).toContain(`error="insufficient_scope", scope="${scope}"`);
      await problem(response, 403, "forbidden");
    }
  });

  it.each(routes)("$route with only $scope → past the scope check", async ({ route, scope }) => {
    const response = await probe(route, await adminToken(scope ?? ""));
    const text = await response.text();
    expect([200, 404, 422], text).toContain(response.status);
  });

  it("nothing was changed by the probes", acmeIntact);
});
