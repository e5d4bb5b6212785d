/**
 * The fake Neon API driven in-process through `app.request` (no port): the endpoints the `neon`
 * provisioner uses answer with the spec's shapes and statuses, operations lock a branch until
 * polled to an end, and injected failures look like the real API's. The store is also checked
 * alone, without HTTP.
 */
import type { Branch, Database, Operation, Role } from "@neondatabase/api-client";
import { beforeEach, describe, expect, it } from "vitest";
import { createFakeNeonApp, type FakeNeonApp } from "../../../src/dev/fake-neon/app.ts";
import { FakeNeonStateError } from "../../../src/dev/fake-neon/model.ts";
import { pollOperation } from "../../../src/dev/fake-neon/operations.ts";
import { createBranch, createFakeNeonState, createRole, findProject } from "../../../src/dev/fake-neon/state.ts";

const KEY = "napi_app_test_key";
const PROJECT = "proj-app";
const MAIN = "br-main-app";
const base = `/api/v2/projects/${PROJECT}`;

let fake: FakeNeonApp;

beforeEach(() => {
  fake = createFakeNeonApp({
    apiKey: KEY,
    projects: [{ id: PROJECT, regionId: "aws-eu-central-1", defaultBranchId: MAIN }],
    operationPolls: 2,
  });
});

async function call<T>(method: string, path: string, body?: unknown, key = KEY) {
  const response = await fake.app.request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Polls each operation until it is no longer running; returns the final states. */
async function settle(operations: readonly Operation[]): Promise<Operation[]> {
  const settled: Operation[] = [];
  for (const op of operations) {
    let current = op;
    for (let i = 0; i < 5 && current.status === "running"; i++) {
      current = (await call<{ operation: Operation }>("GET", `${base}/operations/${op.id}`)).body.operation;
    }
    settled.push(current);
  }
  return settled;
}

describe("fake Neon app: branches, roles, databases", () => {
  it("creates a branch, a role and a database, and lists them", async () => {
    const created = await call<{ branch: Branch; operations: Operation[]; roles: Role[]; databases: Database[] }>(
      "POST",
      `${base}/branches`,
      { branch: { name: "tenant-acme" }, endpoints: [{ type: "read_write" }] },
    );
    expect(created.status).toBe(201);
    const branch = created.body.branch;
    expect(branch).toMatchObject({ name: "tenant-acme", parent_id: MAIN, current_state: "init", default: false });
    expect(created.body.operations.map((o) => [o.action, o.status])).toEqual([
      ["create_timeline", "running"],
      ["start_compute", "running"],
    ]);
    // A new branch inherits its parent's role and database; listings never show passwords.
    expect(created.body.roles.map((r) => [r.name, r.password])).toEqual([["neondb_owner", undefined]]);
    expect(created.body.databases.map((d) => d.name)).toEqual(["neondb"]);

    // While the branch's operations run, Neon refuses new work on it.
    const locked = await call<{ code: string }>("POST", `${base}/branches/${branch.id}/roles`, {
      role: { name: "acme_app" },
    });
    expect(locked.status).toBe(423);
    expect((await settle(created.body.operations)).map((o) => o.status)).toEqual(["finished", "finished"]);
    const ready = await call<{ branch: Branch }>("GET", `${base}/branches/${branch.id}`);
    expect(ready.body.branch.current_state).toBe("ready");

    const role = await call<{ role: Role; operations: Operation[] }>("POST", `${base}/branches/${branch.id}/roles`, {
      role: { name: "acme_app" },
    });
    expect(role.status).toBe(201);
    expect(role.body.role.name).toBe("acme_app");
    expect(role.body.role.password).toMatch(/^\w{12}$/);
    expect(role.body.operations.map((o) => o.action)).toEqual(["apply_config"]);
    await settle(role.body.operations);

    const database = await call<{ database: Database; operations: Operation[] }>(
      "POST",
      `${base}/branches/${branch.id}/databases`,
      { database: { name: "tenant_acme", owner_name: "acme_app" } },
    );
    expect(database.status).toBe(201);
    expect(database.body.database).toMatchObject({ name: "tenant_acme", owner_name: "acme_app", branch_id: branch.id });
    await settle(database.body.operations);

    const roles = await call<{ roles: Role[] }>("GET", `${base}/branches/${branch.id}/roles`);
    expect(roles.body.roles.map((r) => r.name)).toEqual(["neondb_owner", "acme_app"]);
    expect(roles.body.roles.every((r) => r.password === undefined)).toBe(true);
    const databases = await call<{ databases: Database[] }>("GET", `${base}/branches/${branch.id}/databases`);
    expect(databases.body.databases.map((d) => [d.name, d.owner_name])).toEqual([
      ["neondb", "neondb_owner"],
      ["tenant_acme", "acme_app"],
    ]);
    const branches = await call<{ branches: Branch[] }>("GET", `${base}/branches?search=acme`);
    expect(branches.body.branches.map((b) => b.id)).toEqual([branch.id]);

    const uri = await call<{ uri: string }>(
      "GET",
      `${base}/connection_uri?branch_id=${branch.id}&database_name=tenant_acme&role_name=acme_app&pooled=true`,
    );
    expect(uri.body.uri).toBe(
      `postgresql://acme_app:${role.body.role.password}@${fake
        .branches(PROJECT)
        .find((b) => b.branch.id === branch.id)
        ?.endpoints[0]?.host.replace(".", "-pooler.")}/tenant_acme?sslmode=require`,
    );
    expect(fake.count("createProjectBranchRole")).toBe(2);
    expect(fake.calls.map((c) => c.status)).toContain(423);
  });

  it("answers name clashes, missing parents and missing owners as Neon does", async () => {
    expect((await call("POST", `${base}/branches`, { branch: { name: "main" } })).status).toBe(409);
    expect((await call("POST", `${base}/branches`, { branch: { parent_id: "br-nope" } })).status).toBe(404);
    const owner = await call("POST", `${base}/branches/${MAIN}/databases`, {
      database: { name: "x", owner_name: "nobody" },
    });
    expect(owner.status).toBe(404);
    expect((await call("POST", `${base}/branches/${MAIN}/roles`, { role: { name: "pg_monitor" } })).status).toBe(400);
    expect((await call("DELETE", `${base}/branches/${MAIN}`)).status).toBe(400);
    const gone = await call("DELETE", `${base}/branches/br-never-existed`);
    expect([gone.status, gone.body]).toEqual([204, undefined]);
  });
});

describe("fake Neon app: authentication, routing and injected failures", () => {
  it("refuses a wrong API key with 401 before routing, and answers unknown routes 404 or 405", async () => {
    const denied = await call<{ message: string }>("GET", `${base}/branches`, undefined, "napi_wrong");
    expect(denied.status).toBe(401);
    expect(fake.calls.at(-1)).toMatchObject({ operationId: "listProjectBranches", status: 401 });
    expect((await call("PUT", `${base}/branches`, {})).status).toBe(405);
    expect((await call("GET", `${base}/endpoints`)).status).toBe(404);
    expect(fake.calls.slice(-2).map((c) => c.route)).toEqual(["unknown", "unknown"]);
  });

  it("answers an injected 429 with Retry-After and Neon's error body, without touching the state", async () => {
    fake.failNext("POST /projects/{project_id}/branches", 429, 1, { "retry-after": "3" });
    const limited = await call<{ request_id: string; code: string; message: string }>("POST", `${base}/branches`, {
      branch: { name: "tenant-acme" },
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect(limited.headers.get("content-type")).toBe("application/json");
    expect(Object.keys(limited.body).sort()).toEqual(["code", "message", "request_id"]);
    expect(fake.branches(PROJECT).map((b) => b.branch.name)).toEqual(["main"]);

    // Only the next request fails; the retry goes through.
    expect((await call("POST", `${base}/branches`, { branch: { name: "tenant-acme" } })).status).toBe(201);
    expect(fake.calls.filter((c) => c.operationId === "createProjectBranch").map((c) => c.status)).toEqual([429, 201]);
    expect(() => fake.failNext("notAnOperation", 500)).toThrow();
  });

  it("lets a test fail the next operation, reported by polling", async () => {
    fake.failOperationNext();
    const created = await call<{ operations: Operation[] }>("POST", `${base}/branches`, { branch: { name: "doomed" } });
    const [timeline] = await settle(created.body.operations);
    expect(timeline).toMatchObject({ action: "create_timeline", status: "failed", failures_count: 1 });
    expect(fake.operations(PROJECT).map((o) => o.status)).toEqual(["failed"]);
  });
});

describe("fake Neon state without HTTP", () => {
  it("copies the parent's roles into a new branch and refuses reserved or duplicate role names", () => {
    const state = createFakeNeonState({ projects: [{ id: PROJECT, regionId: "aws-us-east-2" }], operationPolls: 1 });
    const project = findProject(state, PROJECT);
    const { branch, operations } = createBranch(state, project, { name: "t", parentId: undefined, endpointTypes: [] });
    expect([...branch.roles.keys()]).toEqual(["neondb_owner"]);
    expect(() => createRole(state, project, branch, "neon_superuser")).toThrow(
      expect.objectContaining({ reason: "invalid" }),
    );
    // Until its create_timeline operation is polled to an end (one poll here), the branch is locked.
    expect(() => createRole(state, project, branch, "app")).toThrow(expect.objectContaining({ reason: "locked" }));
    expect(operations.map((o) => pollOperation(project, o.id).status)).toEqual(["finished"]);
    expect(createRole(state, project, branch, "app").role.name).toBe("app");
    const duplicate = (() => {
      try {
        createRole(state, project, branch, "app");
      } catch (error) {
        return error;
      }
    })();
    expect(duplicate).toBeInstanceOf(FakeNeonStateError);
    expect((duplicate as FakeNeonStateError).reason).toBe("conflict");
    expect(() => findProject(state, "nope")).toThrow(FakeNeonStateError);
  });
});
