/**
 * The `url` provisioner registers a database someone else runs, and the Worker then connects to its
 * host: a `tenants:write` token must not be able to point the Worker at any host it likes. Only
 * hosts on URL_PROVISIONER_HOSTS pass (exact names or `*.suffix`); an empty list turns the
 * provisioner off. A refused create leaves no tenant behind.
 *
 * Slugs here start with `up-`: the control database is shared with every other test file.
 */
import { describe, expect, it } from "vitest";
import { adminToken, call, json } from "./support.ts";

const ADMIN = "http://admin.localhost";

async function create(body: Record<string, unknown>, hosts?: string): Promise<Response> {
  return call(`${ADMIN}/v1/tenants`, {
    ...json({ region: "local", provisioner: "url", ...body }),
    token: await adminToken("up-ops", "tenants:read tenants:write"),
    ...(hosts === undefined ? {} : { env: { URL_PROVISIONER_HOSTS: hosts } }),
  });
}

async function expectProblem(response: Response, status: number, code: string, path?: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  const body = JSON.parse(text) as { code: string; errors?: { path: string }[] };
  expect(body.code).toBe(code);
  if (path) expect(body.errors?.map((e) => e.path)).toEqual([path]);
}

async function expectNoTenant(slug: string): Promise<void> {
  const response = await call(`${ADMIN}/v1/tenants/${slug}`, { token: await adminToken("up-ops", "tenants:read") });
  expect(response.status).toBe(404);
}

describe("url provisioner: hosts on URL_PROVISIONER_HOSTS only", () => {
  it("a host not on the list → 422 url_host_not_allowed, no tenant created", async () => {
    for (const [slug, uri] of [
      ["up-evil", "postgres://u:p@evil.example:5432/db"],
      ["up-suffix", "postgres://u:p@localhost.evil.example/db"],
      ["up-metadata", "postgres://u:p@169.254.169.254/db"],
      ["up-notaurl", "not a connection string"],
    ] as const) {
      await expectProblem(
        await create({ slug, connectionString: uri }),
        422,
        "url_host_not_allowed",
        "connectionString",
      );
      await expectNoTenant(slug);
    }
  });

  it("the migration connection string is checked as well", async () => {
    const response = await create({
      slug: "up-migration",
      connectionString: "postgres://u:p@localhost:1/db",
      migrationConnectionString: "postgres://u:p@evil.example/db",
    });
    await expectProblem(response, 422, "url_host_not_allowed", "migrationConnectionString");
    await expectNoTenant("up-migration");
  });

  it("an empty list turns the url provisioner off → 422 url_provisioner_disabled", async () => {
    const response = await create({ slug: "up-off", connectionString: "postgres://u:p@localhost:1/db" }, "");
    await expectProblem(response, 422, "url_provisioner_disabled");
    await expectNoTenant("up-off");
  });

  it("an allowed host (exact, or under a *.suffix entry) gets past the check", async () => {
    // Nothing listens on port 1: onboarding fails when it migrates, after the host check let it through.
    for (const [slug, uri, hosts] of [
      ["up-exact", "postgres://u:p@localhost:1/db", undefined],
      ["up-wild", "postgres://u:p@db.Tenants.Example:1/db", "*.tenants.example"],
    ] as const) {
      await expectProblem(await create({ slug, connectionString: uri }, hosts), 502, "onboarding_failed");
      const shown = await call(`${ADMIN}/v1/tenants/${slug}`, { token: await adminToken("up-ops", "tenants:read") });
      expect(await shown.json()).toMatchObject({ slug, provisioner: "url", status: "failed", failedStep: "migrating" });
    }
  });
});
