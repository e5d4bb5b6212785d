/**
 * The `neon` provisioner through the real `@neondatabase/api-client` (axios, fetch adapter) against
 * the in-memory fake Neon API: creation, reuse, resume, retries, failures, deletion, secrecy.
 *
 * The fake's connection strings point at real databases on the embedded Postgres (one per branch
 * and database name, reached through the gateway), so the app role the provisioner creates with SQL
 * really is created, and what it may do is checked by logging in as it.
 */
import { inspect } from "node:util";
import { neon as neonSql } from "@neondatabase/serverless";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createNeonProvisioner,
  type NeonProvisionerOptions,
} from "../../../src/control/provisioners/neon/provisioner.ts";
import { ProvisionerError, type ProvisionRequest, type ResourceRef } from "../../../src/control/provisioners/types.ts";
import { type FakeNeon, startFakeNeonApi } from "../../../src/dev/fake-neon/server.ts";
import { postgresUrl, useGatewayForNeon } from "../support.ts";

const API_KEY = "napi_test_0123456789abcdefSECRET";
const PROJECT = "tenantry-eu";
const MAIN = "br-main-000000";
const ATTEMPTS = 3;
const POLL_MS = 7;

const acme: ProvisionRequest = { tenantId: "t_acme", slug: "acme", region: "eu-central" };

let fake: FakeNeon;
let template: string;
let sleeps: number[];

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.ok).toBe(true);
  return (await response.json()) as T;
}

/** The real database standing in for `database` on a fake branch (created on first use), as the superuser. */
async function databaseFor(branchId: string, database: string): Promise<string> {
  const name = `nb_${branchId}_${database}`.replace(/[^a-z0-9_]/g, "_");
  const admin = neonSql(postgresUrl());
  if ((await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).length === 0)
    await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(postgresUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

beforeAll(async () => {
  useGatewayForNeon();
  // As on Neon: the role API-created roles are members of (here it has no rights, only the name).
  await neonSql(postgresUrl()).query(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'neon_superuser') THEN CREATE ROLE neon_superuser NOLOGIN; END IF; END $$",
  );
});

beforeEach(async () => {
  fake = await startFakeNeonApi({
    apiKey: API_KEY,
    projects: [{ id: PROJECT, regionId: "aws-eu-central-1", defaultBranchId: MAIN }],
    databaseFor: (branchId, database) => databaseFor(branchId, database),
  });
  // A template branch with a schema role and database every tenant branch inherits.
  template = (
    await api<{ branch: { id: string } }>("POST", `/projects/${PROJECT}/branches`, { branch: { name: "template" } })
  ).branch.id;
  fake.calls.splice(0);
  sleeps = [];
});

afterEach(async () => {
  await fake.close();
});

function neon(overrides: Partial<NeonProvisionerOptions> = {}) {
  return createNeonProvisioner({
    apiKey: API_KEY,
    baseURL: fake.url,
    regions: {
      "eu-central": { projectId: PROJECT, templateBranchId: template },
      "us-east": { projectId: "tenantry-us" },
    },
    retry: { attempts: ATTEMPTS, baseDelayMs: 100, maxDelayMs: 1_000 },
    operationPollMs: POLL_MS,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...overrides,
  });
}

const tenantBranches = (name = "tenant-acme") => fake.branches(PROJECT).filter((b) => b.branch.name === name);
const backoffs = () => sleeps.filter((ms) => ms !== POLL_MS);

/** The rejection, checked to be a ProvisionerError that leaks neither the API key nor any role password. */
async function rejection(promise: Promise<unknown>, ...secrets: string[]): Promise<ProvisionerError> {
  const error: unknown = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProvisionerError);
  const text = `${String(error)}\n${inspect(error, { depth: 10 })}\n${JSON.stringify(error)}`;
  const passwords = fake.branches(PROJECT).flatMap((b) => b.roles.map((r) => r.password ?? ""));
  for (const secret of [API_KEY, ...secrets, ...passwords.filter(Boolean)]) expect(text).not.toContain(secret);
  return error as ProvisionerError;
}

describe("neon provisioner: provisioning", () => {
  it("lists its configured regions and has kind neon", () => {
    const provisioner = neon();
    expect(provisioner.kind).toBe("neon");
    expect(provisioner.regions()).toEqual(["eu-central", "us-east"]);
  });

  it("creates a branch from the template with a read_write endpoint, the owner role and the database", async () => {
    const result = await neon().provision(acme);

    const [state, ...others] = tenantBranches();
    expect(others).toHaveLength(0);
    if (!state) throw new Error("no tenant branch");
    expect(state.branch.parent_id).toBe(template);
    expect(state.endpoints.map((e) => e.type)).toEqual(["read_write"]);
    expect(state.roles.map((r) => r.name)).toEqual(expect.arrayContaining(["acme_owner", "neondb_owner"]));
    // The app role is not made through the API (that would make it a neon_superuser member).
    expect(state.roles.map((r) => r.name)).not.toContain("acme_app");
    expect(state.databases.find((d) => d.name === "tenant_acme")?.owner_name).toBe("acme_owner");

    expect(result.ref).toEqual({
      region: "eu-central",
      projectId: PROJECT,
      branchId: state.branch.id,
      branchName: "tenant-acme",
      ownerRole: "acme_owner",
      appRole: "acme_app",
      databaseName: "tenant_acme",
    });
    // Migrations: the owner's direct URI as Neon gives it; app traffic: the owner's pooled URI with the app role in it.
    const real = await databaseFor(state.branch.id, "tenant_acme");
    expect(result.migrationUri).toBe(real);
    const app = new URL(result.connectionUri);
    expect(app.username).toBe("acme_app");
    expect(app.password).toMatch(/^[0-9a-f]{48}$/);
    expect(`${app.host}${app.pathname}`).toBe(`${new URL(real).host}${new URL(real).pathname}`);

    // Every operation the tenant's calls started was waited for; polls used the configured interval.
    const operations = fake.operations(PROJECT).filter((o) => o.branch_id === state.branch.id);
    expect(operations.length).toBeGreaterThanOrEqual(4); // create_timeline, start_compute, owner role, database
    expect(operations.every((o) => o.status === "finished")).toBe(true);
    expect(fake.count("getProjectOperation")).toBe(operations.length * 2);
    expect(backoffs()).toEqual([]);
    expect(
      fake.calls.find((c) => c.operationId === "getConnectionURI" && c.query.pooled === "true")?.query,
    ).toMatchObject({
      branch_id: state.branch.id,
      database_name: "tenant_acme",
      role_name: "acme_owner",
    });
    expect(fake.calls.every((c) => c.status < 300)).toBe(true);
  });

  it("branches from the project's default branch when no template is configured; dashes become underscores", async () => {
    const result = await neon({ regions: { "eu-central": { projectId: PROJECT } } }).provision({
      tenantId: "t_big",
      slug: "big-shop",
      region: "eu-central",
    });
    const [state] = tenantBranches("tenant-big-shop");
    expect(state?.branch.parent_id).toBe(MAIN);
    expect(result.ref).toMatchObject({
      appRole: "big_shop_app",
      ownerRole: "big_shop_owner",
      databaseName: "tenant_big_shop",
    });
    expect(fake.calls.find((c) => c.operationId === "createProjectBranch")).toBeDefined();
  });

  it("provisioning the same slug again reuses branch, roles and database (no second branch)", async () => {
    const provisioner = neon();
    const first = await provisioner.provision(acme);
    const creates = () =>
      ["createProjectBranch", "createProjectBranchRole", "createProjectBranchDatabase"].map((r) => fake.count(r));
    expect(creates()).toEqual([1, 1, 1]);

    const byName = await provisioner.provision(acme);
    const byRef = await provisioner.provision(acme, first.ref);
    expect(byName.ref).toEqual(first.ref);
    expect(byRef.ref).toEqual(first.ref);
    // Same role and database; the app role's password is set anew, as the local provisioner's is.
    const where = (uri: string) => Object.assign(new URL(uri), { password: "" }).toString();
    expect(where(byRef.connectionUri)).toBe(where(first.connectionUri));
    expect(byRef.migrationUri).toBe(first.migrationUri);
    expect(await neonSql(byRef.connectionUri).query("SELECT current_user AS who")).toEqual([{ who: "acme_app" }]);
    expect(creates()).toEqual([1, 1, 1]);
    expect(tenantBranches()).toHaveLength(1);
    // The saved ref goes straight to the branch; without it, one search by name.
    expect(fake.count("getProjectBranch")).toBe(1);
    expect(fake.count("listProjectBranches")).toBe(2);
  });

  it("refuses an unknown region without calling Neon", async () => {
    const error = await rejection(neon().provision({ ...acme, region: "ap-south" }));
    expect(error.code).toBe("region_unsupported");
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a saved ref that names another branch or project", async () => {
    const provisioner = neon();
    expect((await rejection(provisioner.provision(acme, { branchId: template }))).code).toBe("invalid_input");
    expect((await rejection(provisioner.provision(acme, { projectId: "someone-else" }))).code).toBe("invalid_input");
    expect(tenantBranches()).toHaveLength(0);
  });
});

describe("neon provisioner: the app role has DML rights only", () => {
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => "ok",
      (e: { code?: string }) => e.code,
    );

  it("is made with SQL: no neon_superuser, no CREATEROLE/CREATEDB; DML on the tables, no DDL, no ledger", async () => {
    const result = await neon().provision(acme);
    const owner = neonSql(result.migrationUri);
    // What migrations do, as the owner: a table in public, the ledger in its own schema.
    await owner.query("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text)");
    await owner.query("CREATE SCHEMA IF NOT EXISTS tenantry");
    await owner.query("CREATE TABLE IF NOT EXISTS tenantry.ledger (name text)");

    const admin = neonSql(postgresUrl());
    const [role] = (await admin.query(
      "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'acme_app'",
    )) as Record<string, boolean>[];
    expect(role).toEqual({
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolbypassrls: false,
      rolcanlogin: true,
    });
    const memberships = await admin.query(
      "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'acme_app'",
    );
    expect(memberships).toEqual([]);

    const app = neonSql(result.connectionUri);
    await app.query("INSERT INTO items (name) VALUES ('one')");
    expect(await app.query("SELECT name FROM items")).toEqual([{ name: "one" }]);
    expect(await codeOf(app.query("CREATE TABLE mine (id int)"))).toBe("42501");
    expect(await codeOf(app.query("DROP TABLE items"))).toBe("42501");
    expect(await codeOf(app.query("SELECT * FROM tenantry.ledger"))).toBe("42501");
    expect(await codeOf(app.query("CREATE ROLE sneaky"))).toBe("42501");
  });

  it("an app role an earlier run made through the API is taken out of neon_superuser", async () => {
    const admin = neonSql(postgresUrl());
    await admin.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'acme_app') THEN CREATE ROLE acme_app LOGIN; END IF; END $$",
    );
    await admin.query("GRANT neon_superuser TO acme_app");
    const member = () =>
      admin.query(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = 'neon_superuser' AND u.rolname = 'acme_app'",
      );
    expect(await member()).toHaveLength(1);
    await neon().provision(acme);
    expect(await member()).toEqual([]);
  });
});

describe("neon provisioner: interruption and retries", () => {
  it("resumes after the role step failed: the partial ref leads back to the same branch", async () => {
    const progress: ResourceRef[] = [];
    const provisioner = neon({ onProgress: (_request, ref) => void progress.push(ref) });
    fake.failNext("POST /projects/{project_id}/branches/{branch_id}/roles", 500, ATTEMPTS);

    const error = await rejection(provisioner.provision(acme));
    expect(error.code).toBe("upstream_failed");
    expect(error.message).toContain("HTTP 500");
    expect(error.message).toContain(`after ${ATTEMPTS} attempts`);
    expect(fake.count("createProjectBranchRole")).toBe(ATTEMPTS);
    expect(backoffs()).toHaveLength(ATTEMPTS - 1);
    const partial = progress.at(-1);
    expect(partial).toMatchObject({ projectId: PROJECT, branchName: "tenant-acme" });
    expect(partial?.databaseName).toBeUndefined();
    expect(tenantBranches()[0]?.roles.some((r) => r.name.startsWith("acme_"))).toBe(false);

    const result = await provisioner.provision(acme, partial);
    expect(result.ref.branchId).toBe(partial?.branchId);
    expect(fake.count("createProjectBranch")).toBe(1);
    expect(tenantBranches()).toHaveLength(1);
    expect(tenantBranches()[0]?.databases.map((d) => d.name)).toContain("tenant_acme");
    expect(progress.at(-1)).toEqual(result.ref);
  });

  it("resumes by the deterministic names when no ref was saved", async () => {
    const provisioner = neon();
    fake.failNext("createProjectBranchDatabase", 503, ATTEMPTS);
    expect((await rejection(provisioner.provision(acme))).code).toBe("upstream_failed");
    const result = await provisioner.provision(acme);
    expect(fake.count("createProjectBranch")).toBe(1);
    expect(fake.count("createProjectBranchRole")).toBe(1);
    expect(result.ref.branchId).toBe(tenantBranches()[0]?.branch.id);
  });

  it("retries a 429 after exactly the Retry-After it was given", async () => {
    fake.failNext("GET /projects/{project_id}/branches", 429, 1, { "retry-after": "7" });
    fake.failNext("POST /projects/{project_id}/branches", 429, 1, { "retry-after": "2" });
    await neon().provision(acme);
    expect(backoffs()).toEqual([7_000, 2_000]);
    expect(fake.calls.filter((c) => c.status === 429)).toHaveLength(2);
    expect(fake.count("createProjectBranch")).toBe(2);
    expect(tenantBranches()).toHaveLength(1);
  });

  it("retries 5xx with growing, jittered, capped backoff and never creates a second branch", async () => {
    fake.failNext("createProjectBranch", 500, 2);
    const result = await neon({ retry: { attempts: 4, baseDelayMs: 400, maxDelayMs: 500 } }).provision(acme);
    expect(result.ref.branchId).toBe(tenantBranches()[0]?.branch.id);
    const [first, second] = backoffs();
    expect(first).toBeGreaterThanOrEqual(200);
    expect(first).toBeLessThanOrEqual(400);
    expect(second).toBeGreaterThanOrEqual(250);
    expect(second).toBeLessThanOrEqual(500);
    expect(fake.count("createProjectBranch")).toBe(3);
    // Before re-sending a create whose outcome is unknown, the provisioner looks for the branch.
    expect(fake.count("listProjectBranches")).toBe(3);
    expect(tenantBranches()).toHaveLength(1);
  });

  it("fails at once on a 400", async () => {
    fake.failNext("createProjectBranch", 400);
    const error = await rejection(neon().provision(acme));
    expect(error.code).toBe("upstream_failed");
    expect(error.message).toContain("HTTP 400");
    expect(fake.count("createProjectBranch")).toBe(1);
    expect(backoffs()).toEqual([]);
  });

  it("retries network errors, then gives up with upstream_failed", async () => {
    const url = fake.url;
    await fake.close();
    const error = await rejection(neon({ baseURL: url }).provision(acme));
    expect(error.code).toBe("upstream_failed");
    expect(error.message).not.toContain("HTTP");
    expect(backoffs()).toHaveLength(ATTEMPTS - 1);
    fake = await startFakeNeonApi({ apiKey: API_KEY }); // for afterEach
  });

  it("reports a failed operation as operation_failed with its id", async () => {
    fake.failOperationNext();
    const error = await rejection(neon().provision(acme));
    expect(error.code).toBe("operation_failed");
    const failed = fake.operations(PROJECT).find((o) => o.status === "failed");
    expect(failed).toBeDefined();
    expect(error.message).toContain(failed?.id);
  });

  it("gives up on an operation that never finishes", async () => {
    await fake.close();
    fake = await startFakeNeonApi({
      apiKey: API_KEY,
      projects: [{ id: PROJECT, regionId: "aws-eu-central-1" }],
      operationPolls: 1_000,
    });
    const error = await rejection(
      neon({ regions: { "eu-central": { projectId: PROJECT } }, operationTimeoutMs: POLL_MS * 3 }).provision(acme),
    );
    expect(error.code).toBe("operation_failed");
    expect(error.message).toContain("still running");
    // The timeout counts wall-clock time too, so a loaded machine may poll fewer times: at least once, never past the budget.
    expect(fake.count("getProjectOperation")).toBeGreaterThanOrEqual(1);
    expect(fake.count("getProjectOperation")).toBeLessThanOrEqual(3);
  });

  it("a wrong API key fails at once with upstream_failed 401 and is never echoed", async () => {
    const wrongKey = "napi_wrong_key_987654321";
    const error = await rejection(neon({ apiKey: wrongKey }).provision(acme), wrongKey);
    expect(error.code).toBe("upstream_failed");
    expect(error.message).toContain("HTTP 401");
    expect(fake.calls).toHaveLength(1);
    expect(backoffs()).toEqual([]);
  });
});

describe("neon provisioner: deprovision and exists", () => {
  it("deletes the branch, waits for the deletion, and is idempotent", async () => {
    const provisioner = neon();
    const { ref } = await provisioner.provision(acme);
    expect(await provisioner.exists(acme, ref)).toBe(true);
    expect(await provisioner.exists(acme, {})).toBe(true);

    await provisioner.deprovision(acme, ref);
    expect(tenantBranches()).toHaveLength(0);
    const deletion = fake
      .operations(PROJECT)
      .filter((o) => o.branch_id === ref.branchId && o.action === "delete_timeline");
    expect(deletion.map((o) => o.status)).toEqual(["finished"]);
    expect(await provisioner.exists(acme, ref)).toBe(false);
    expect(await provisioner.exists(acme, {})).toBe(false);

    await provisioner.deprovision(acme, ref);
    await provisioner.deprovision(acme, {});
    expect(fake.count("deleteProjectBranch")).toBe(1);
    // The template and the default branch are untouched.
    expect(
      fake
        .branches(PROJECT)
        .map((b) => b.branch.name)
        .sort(),
    ).toEqual(["main", "template"]);
  });

  it("treats a branch already gone at DELETE time (204) as done", async () => {
    const provisioner = neon();
    const { ref } = await provisioner.provision(acme);
    await api("DELETE", `/projects/${PROJECT}/branches/${ref.branchId}`);
    fake.calls.splice(0);
    await provisioner.deprovision(acme, ref);
    expect(fake.count("deleteProjectBranch")).toBe(0);
  });

  it("finds the branch by name when the saved ref is empty", async () => {
    const provisioner = neon();
    await provisioner.provision(acme);
    await provisioner.deprovision(acme, {});
    expect(tenantBranches()).toHaveLength(0);
  });

  it("never deletes a branch the ref points at by mistake", async () => {
    const provisioner = neon();
    await provisioner.provision(acme);
    expect((await rejection(provisioner.deprovision(acme, { branchId: template }))).code).toBe("invalid_input");
    expect((await rejection(provisioner.deprovision(acme, { branchId: MAIN }))).code).toBe("invalid_input");
    expect(fake.count("deleteProjectBranch")).toBe(0);
    expect(tenantBranches()).toHaveLength(1);
  });

  it("retries a 500 on delete and still ends with the branch gone", async () => {
    const provisioner = neon();
    const { ref } = await provisioner.provision(acme);
    fake.failNext("DELETE /projects/{project_id}/branches/{branch_id}", 500, 1);
    await provisioner.deprovision(acme, ref);
    expect(tenantBranches()).toHaveLength(0);
    expect(fake.count("deleteProjectBranch")).toBe(2);
  });
});
