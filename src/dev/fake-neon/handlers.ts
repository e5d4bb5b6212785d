/**
 * One Hono handler per Neon API v2 endpoint the fake serves (keyed by the spec's operationId):
 * each reads the request as the spec defines it (path parameters, query, JSON body), calls the
 * store in `state.ts`, and answers with the spec's response shape and status. Input the store
 * cannot judge (an unreadable body, a bad page size) is refused here; everything about branches,
 * roles and databases is the store's to decide.
 */
import type { Context, Handler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { FakeBranch } from "./model.ts";
import { pollOperation } from "./operations.ts";
import { placeholderUri, poolerHost, stripPassword } from "./records.ts";
import type { FakeNeonEnv, NeonOperationId } from "./routes.ts";
import {
  connectionTarget,
  createBranch,
  createDatabase,
  createRole,
  deleteBranch,
  findBranch,
  findProject,
  listBranches,
  readWriteEndpoint,
} from "./state.ts";

type C = Context<FakeNeonEnv>;

const MAX_BODY_BYTES = 1024 * 1024;
const clone = <T>(value: T): T => structuredClone(value);
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The JSON body, `undefined` when empty. */
async function readJson(c: C): Promise<unknown> {
  const bytes = Buffer.from(await c.req.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) throw new HTTPException(413, { message: "request body too large" });
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new HTTPException(400, { message: "request body is not valid JSON" });
  }
}

/** `body[object][field]` when it is a string (the spec wraps every create in an object: `{ branch: { name } }`). */
function stringField(body: unknown, object: string, field: string): string | undefined {
  if (!isRecord(body) || !isRecord(body[object])) return undefined;
  const value = body[object][field];
  return typeof value === "string" ? value : undefined;
}

const searchParams = (c: C) => new URL(c.req.url).searchParams;
const projectOf = (c: C) => findProject(c.var.state, c.req.param("project_id") ?? "");
const branchOf = (c: C) => {
  const project = projectOf(c);
  return { project, branch: findBranch(project, c.req.param("branch_id") ?? "") };
};

function listProjectBranches(c: C): Response {
  const project = projectOf(c);
  const query = searchParams(c);
  const search = query.get("search")?.toLowerCase() ?? "";
  const sortBy = (query.get("sort_by") ?? "updated_at") as "name" | "created_at" | "updated_at";
  const sortOrder = query.get("sort_order") === "asc" ? "asc" : "desc";
  const limit = Number(query.get("limit") ?? "10000");
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new HTTPException(400, { message: "invalid limit" });
  // The cursor is opaque to clients; here it is the offset of the next page, base64url.
  const cursor = query.get("cursor");
  const offset = cursor ? Number(Buffer.from(cursor, "base64url").toString()) : 0;
  if (!Number.isInteger(offset) || offset < 0) throw new HTTPException(400, { message: "invalid cursor" });
  const { page, more } = listBranches(project, { search, sortBy, sortOrder, offset, limit });
  return c.json({
    branches: page,
    annotations: {},
    pagination: {
      ...(more ? { next: Buffer.from(String(offset + limit)).toString("base64url") } : {}),
      sort_by: sortBy,
      sort_order: sortOrder,
    },
  });
}

/** The spec's `connection_uris` of a new branch: one per database whose owner role exists, direct host. */
function connectionUris(branch: FakeBranch) {
  const endpoint = readWriteEndpoint(branch);
  if (!endpoint) return [];
  return [...branch.databases.values()].flatMap((database) => {
    const owner = branch.roles.get(database.owner_name);
    if (!owner) return [];
    return [
      {
        connection_uri: placeholderUri(endpoint, owner, database.name, false),
        connection_parameters: {
          database: database.name,
          password: owner.password,
          role: owner.name,
          host: endpoint.host,
          pooler_host: poolerHost(endpoint),
        },
      },
    ];
  });
}

async function createProjectBranch(c: C): Promise<Response> {
  const body = (await readJson(c)) ?? {};
  const project = projectOf(c);
  if (!isRecord(body)) throw new HTTPException(400, { message: "invalid request body" });
  const endpoints = Array.isArray(body.endpoints) ? body.endpoints : [];
  const { branch, operations } = createBranch(c.var.state, project, {
    name: stringField(body, "branch", "name"),
    parentId: stringField(body, "branch", "parent_id"),
    endpointTypes: endpoints.map((e) => (isRecord(e) ? e.type : undefined)),
  });
  return c.json(
    {
      branch: clone(branch.branch),
      endpoints: clone(branch.endpoints),
      operations,
      roles: [...branch.roles.values()].map(stripPassword),
      databases: clone([...branch.databases.values()]),
      connection_uris: connectionUris(branch),
    },
    201,
  );
}

function deleteProjectBranch(c: C): Response {
  const deleted = deleteBranch(c.var.state, projectOf(c), c.req.param("branch_id") ?? "");
  // Deleting a branch that is not there is not an error: Neon answers 204.
  return deleted ? c.json(deleted) : c.body(null, 204);
}

async function createProjectBranchRole(c: C): Promise<Response> {
  const body = await readJson(c);
  const { project, branch } = branchOf(c);
  const created = createRole(c.var.state, project, branch, stringField(body, "role", "name"));
  return c.json(created, 201);
}

async function createProjectBranchDatabase(c: C): Promise<Response> {
  const body = await readJson(c);
  const { project, branch } = branchOf(c);
  const created = createDatabase(c.var.state, project, branch, {
    name: stringField(body, "database", "name"),
    ownerName: stringField(body, "database", "owner_name"),
  });
  return c.json(created, 201);
}

async function getConnectionURI(c: C): Promise<Response> {
  const project = projectOf(c);
  const query = searchParams(c);
  const databaseName = query.get("database_name");
  const roleName = query.get("role_name");
  if (!databaseName || !roleName) {
    throw new HTTPException(400, { message: "database_name and role_name are required" });
  }
  const { branch, endpoint, role } = connectionTarget(project, {
    databaseName,
    roleName,
    branchId: query.get("branch_id") || undefined,
    endpointId: query.get("endpoint_id") || undefined,
  });
  const pooled = query.get("pooled") === "true";
  const { databaseFor } = c.var;
  const uri = databaseFor
    ? await databaseFor(branch.branch.id, databaseName, roleName, { pooled })
    : placeholderUri(endpoint, role, databaseName, pooled);
  return c.json({ uri });
}

export const HANDLERS: Record<NeonOperationId, Handler<FakeNeonEnv>> = {
  getProject: (c) => c.json({ project: clone(projectOf(c).project) }),
  listProjectBranches,
  createProjectBranch,
  getProjectBranch: (c) => c.json({ branch: clone(branchOf(c).branch.branch) }),
  deleteProjectBranch,
  listProjectBranchRoles: (c) => c.json({ roles: [...branchOf(c).branch.roles.values()].map(stripPassword) }),
  createProjectBranchRole,
  listProjectBranchDatabases: (c) => c.json({ databases: clone([...branchOf(c).branch.databases.values()]) }),
  createProjectBranchDatabase,
  getProjectOperation: (c) => c.json({ operation: pollOperation(projectOf(c), c.req.param("operation_id") ?? "") }),
  getConnectionURI,
};
