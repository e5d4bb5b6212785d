/**
 * An in-memory fake of the part of the Neon API (v2) the `neon` provisioner uses (dev/test only).
 *
 * Paths, status codes and response shapes follow `@neondatabase/api-client`'s OpenAPI spec
 * (`public-v2-for-users.gen.yaml`): branches come with their endpoints, operations, roles and
 * databases; mutating calls return `operations` that start `running` and finish after a number of
 * polls of `GET /projects/{project_id}/operations/{operation_id}`; `DELETE` of a missing branch is
 * 204; errors are `{ code, message }`. Like Neon, a branch with unfinished operations refuses new
 * changes with 423 Locked, names are unique (409), a new branch copies its parent's roles and
 * databases, and every call needs `Authorization: Bearer <apiKey>` (401 otherwise).
 *
 * For tests: `failNext()` injects HTTP failures per route, `failOperationNext()` makes the next
 * operation end `failed`, `calls` records every request, `branches()` shows the state.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type {
  Branch,
  Database,
  Endpoint,
  EndpointPoolerMode,
  EndpointState,
  EndpointType,
  Operation,
  OperationAction,
  OperationStatus,
  Project,
  Role,
} from "@neondatabase/api-client";

export interface FakeNeonProjectOptions {
  readonly id: string;
  /** Neon region id, e.g. `aws-eu-central-1`. */
  readonly regionId: string;
  /** Id of the project's default (root) branch `main`; generated when absent. */
  readonly defaultBranchId?: string;
}

export interface FakeNeonOptions {
  /** Listen port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
  /** The only API key accepted; default `fake-neon-api-key`. */
  readonly apiKey?: string;
  /** Default: one project `fake-project` in `aws-us-east-2`. */
  readonly projects?: readonly FakeNeonProjectOptions[];
  /** Polls of an operation before it reports `finished` (earlier polls say `running`); default 2. */
  readonly operationPolls?: number;
  /**
   * Connection string to hand out from `connection_uri` (e.g. a real local Postgres database).
   * Default: a placeholder `postgresql://<role>:<password>@ep-….<region>.aws.neon.tech/<db>?sslmode=require`.
   */
  readonly databaseFor?: (
    branchId: string,
    databaseName: string,
    roleName: string,
    options: { readonly pooled: boolean },
  ) => Promise<string>;
}

export interface FakeNeonCall {
  readonly method: string;
  /** Route as in the OpenAPI spec, e.g. `POST /projects/{project_id}/branches`; `unknown` when none matched. */
  readonly route: string;
  /** The spec's operationId, e.g. `createProjectBranch`. */
  readonly operationId: string | undefined;
  /** Path below `/api/v2`, without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface FakeBranchState {
  readonly branch: Branch;
  readonly endpoints: readonly Endpoint[];
  /** Roles with their passwords. */
  readonly roles: readonly Role[];
  readonly databases: readonly Database[];
}

export interface FakeNeon {
  /** Base URL for `createApiClient({ baseURL })`, e.g. `http://127.0.0.1:1234/api/v2`. */
  readonly url: string;
  readonly apiKey: string;
  /** Every request, in order. */
  readonly calls: FakeNeonCall[];
  /** How many requests matched `route` (`"METHOD /template"` or an operationId). */
  count(route: string): number;
  /** Snapshot of a project's branches (deep copies). */
  branches(projectId: string): FakeBranchState[];
  /** The project's operations so far (copies). */
  operations(projectId: string): Operation[];
  /**
   * The next `times` requests matching `route` (`"METHOD /template"` as in the spec, or an
   * operationId) fail with `status` (and `headers`, e.g. `{ "retry-after": "3" }`) before
   * touching any state.
   */
  failNext(route: string, status: number, times?: number, headers?: Readonly<Record<string, string>>): void;
  /** The next operation created ends `failed` instead of `finished`. */
  failOperationNext(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

interface FakeBranch {
  branch: Branch;
  endpoints: Endpoint[];
  roles: Map<string, Role & { password: string }>;
  databases: Map<string, Database>;
}

interface FakeOperation {
  operation: Operation;
  pollsLeft: number;
  fail: boolean;
}

interface FakeProject {
  project: Project;
  branches: Map<string, FakeBranch>;
  operations: Map<string, FakeOperation>;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Context {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const errorReply = (status: number, message: string): Reply => ({
  status,
  body: { request_id: randomUUID(), code: "", message },
});

const ADJECTIVES = ["aged", "bitter", "cool", "dark", "floral", "little", "noisy", "raspy", "shiny", "soft", "sweet"];
const NOUNS = ["salad", "sound", "darkness", "snowflake", "king", "smoke", "sunset", "hill", "wind", "pine", "breeze"];
const pick = (list: readonly string[]) => list[randomInt(list.length)] ?? "x";
const friendlyId = (prefix: string) =>
  `${prefix}-${pick(ADJECTIVES)}-${pick(NOUNS)}-${String(randomInt(1_000_000)).padStart(6, "0")}`;
const password = () => randomBytes(9).toString("base64url").replace(/[-_]/g, "x");
const now = () => new Date().toISOString();
const clone = <T>(value: T): T => structuredClone(value);
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const stripPassword = ({ password: _omitted, ...role }: Role): Role => role;

export async function startFakeNeonApi(options: FakeNeonOptions = {}): Promise<FakeNeon> {
  const apiKey = options.apiKey ?? "fake-neon-api-key";
  const operationPolls = Math.max(1, options.operationPolls ?? 2);
  const projects = new Map<string, FakeProject>();
  const calls: FakeNeonCall[] = [];
  const injected: { route: string; status: number; remaining: number; headers: Record<string, string> }[] = [];
  let failNextOperation = false;
  let databaseIds = 1_000;

  // --- state helpers ---------------------------------------------------------------------------

  const regionHost = (project: Project) => `${project.region_id.replace(/^aws-/, "")}.aws.neon.tech`;

  function newBranch(project: Project, name: string, parent: FakeBranch | undefined, isDefault: boolean): FakeBranch {
    const projectBranches = projects.get(project.id)?.branches;
    let id = friendlyId("br");
    while (projectBranches?.has(id)) id = friendlyId("br");
    const at = now();
    const branch: Branch = {
      id,
      project_id: project.id,
      ...(parent ? { parent_id: parent.branch.id, parent_lsn: "0/1DE2850", parent_timestamp: at } : {}),
      name,
      current_state: isDefault ? "ready" : "init",
      ...(isDefault ? {} : { pending_state: "ready" }),
      state_changed_at: at,
      logical_size: 0,
      creation_source: "console",
      primary: isDefault,
      default: isDefault,
      protected: false,
      cpu_used_sec: 0,
      compute_time_seconds: 0,
      active_time_seconds: 0,
      written_data_bytes: 0,
      data_transfer_bytes: 0,
      created_at: at,
      updated_at: at,
      init_source: "parent-data",
    };
    const roles = new Map<string, Role & { password: string }>();
    const databases = new Map<string, Database>();
    for (const role of parent?.roles.values() ?? []) roles.set(role.name, { ...role, branch_id: id });
    for (const database of parent?.databases.values() ?? []) {
      databases.set(database.name, { ...database, id: databaseIds++, branch_id: id });
    }
    return { branch, endpoints: [], roles, databases };
  }

  function newEndpoint(project: Project, branchId: string): Endpoint {
    const id = friendlyId("ep");
    const at = now();
    return {
      host: `${id}.${regionHost(project)}`,
      id,
      project_id: project.id,
      branch_id: branchId,
      autoscaling_limit_min_cu: 0.25,
      autoscaling_limit_max_cu: 2,
      region_id: project.region_id,
      type: "read_write" as EndpointType,
      current_state: "init" as EndpointState,
      pending_state: "active" as EndpointState,
      settings: {},
      pooler_enabled: false,
      pooler_mode: "transaction" as EndpointPoolerMode,
      disabled: false,
      passwordless_access: true,
      creation_source: "console",
      created_at: at,
      updated_at: at,
      proxy_host: regionHost(project),
      suspend_timeout_seconds: 0,
      provisioner: "k8s-neonvm",
    };
  }

  function newOperation(project: FakeProject, branchId: string, endpointId: string | undefined, action: string) {
    const at = now();
    const operation: Operation = {
      id: randomUUID(),
      project_id: project.project.id,
      branch_id: branchId,
      ...(endpointId ? { endpoint_id: endpointId } : {}),
      action: action as OperationAction,
      status: "running" as OperationStatus,
      failures_count: 0,
      created_at: at,
      updated_at: at,
      total_duration_ms: 0,
    };
    project.operations.set(operation.id, { operation, pollsLeft: operationPolls, fail: failNextOperation });
    failNextOperation = false;
    return clone(operation);
  }

  const isOpen = (op: Operation) => op.status === "running" || op.status === "scheduling";

  /** Neon refuses to start work on a branch while earlier operations on it are still running. */
  function assertUnlocked(project: FakeProject, branchId: string) {
    for (const { operation } of project.operations.values()) {
      if (operation.branch_id === branchId && isOpen(operation)) {
        throw new HttpError(
          423,
          "project already has running conflicting operations, scheduling of new ones is prohibited",
        );
      }
    }
  }

  function settle(project: FakeProject, entry: FakeOperation) {
    const { operation } = entry;
    operation.status = (entry.fail ? "failed" : "finished") as OperationStatus;
    if (entry.fail) {
      operation.error = "injected failure";
      operation.failures_count = 1;
    }
    operation.updated_at = now();
    operation.total_duration_ms = Date.parse(operation.updated_at) - Date.parse(operation.created_at);
    const branch = operation.branch_id ? project.branches.get(operation.branch_id) : undefined;
    if (!branch || entry.fail) return;
    if (operation.action === "create_timeline" && branch.branch.current_state !== "ready") {
      branch.branch.current_state = "ready";
      delete branch.branch.pending_state;
    }
    for (const endpoint of branch.endpoints) {
      if (operation.endpoint_id === endpoint.id && operation.action === "start_compute") {
        endpoint.current_state = "active" as EndpointState;
        delete endpoint.pending_state;
      }
    }
  }

  for (const spec of options.projects ?? [{ id: "fake-project", regionId: "aws-us-east-2" }]) {
    const at = now();
    const project: Project = {
      data_storage_bytes_hour: 0,
      data_transfer_bytes: 0,
      written_data_bytes: 0,
      compute_time_seconds: 0,
      active_time_seconds: 0,
      cpu_used_sec: 0,
      id: spec.id,
      platform_id: "aws",
      region_id: spec.regionId,
      name: spec.id,
      provisioner: "k8s-neonvm",
      pg_version: 17,
      proxy_host: `${spec.regionId.replace(/^aws-/, "")}.aws.neon.tech`,
      branch_logical_size_limit: 0,
      branch_logical_size_limit_bytes: -1,
      store_passwords: true,
      creation_source: "console",
      history_retention_seconds: 86_400,
      created_at: at,
      updated_at: at,
      consumption_period_start: at,
      consumption_period_end: at,
      owner_id: "fake-owner",
    };
    const state: FakeProject = { project, branches: new Map(), operations: new Map() };
    projects.set(project.id, state);
    const main = newBranch(project, "main", undefined, true);
    if (spec.defaultBranchId) main.branch.id = spec.defaultBranchId;
    main.roles.set("neondb_owner", {
      branch_id: main.branch.id,
      name: "neondb_owner",
      password: password(),
      protected: false,
      created_at: at,
      updated_at: at,
    });
    main.databases.set("neondb", {
      id: databaseIds++,
      branch_id: main.branch.id,
      name: "neondb",
      owner_name: "neondb_owner",
      created_at: at,
      updated_at: at,
    });
    const endpoint = newEndpoint(project, main.branch.id);
    endpoint.current_state = "idle" as EndpointState;
    delete endpoint.pending_state;
    main.endpoints.push(endpoint);
    state.branches.set(main.branch.id, main);
  }

  // --- lookups ---------------------------------------------------------------------------------

  function projectOf(ctx: Context): FakeProject {
    const project = projects.get(ctx.params.project_id ?? "");
    if (!project) throw new HttpError(404, `project ${ctx.params.project_id} not found`);
    return project;
  }

  function branchOf(ctx: Context): { project: FakeProject; branch: FakeBranch } {
    const project = projectOf(ctx);
    const branch = project.branches.get(ctx.params.branch_id ?? "");
    if (!branch) throw new HttpError(404, `branch ${ctx.params.branch_id} not found`);
    return { project, branch };
  }

  const readWrite = (branch: FakeBranch) => branch.endpoints.find((e) => e.type === "read_write");

  /** Operations a config change (role, database) starts: apply_config on the read_write endpoint. */
  function applyConfig(project: FakeProject, branch: FakeBranch): Operation[] {
    const endpoint = readWrite(branch);
    return endpoint ? [newOperation(project, branch.branch.id, endpoint.id, "apply_config")] : [];
  }

  function stringField(body: unknown, object: string, field: string): string | undefined {
    if (!isRecord(body) || !isRecord(body[object])) return undefined;
    const value = body[object][field];
    return typeof value === "string" ? value : undefined;
  }

  // --- routes ----------------------------------------------------------------------------------

  type Handler = (ctx: Context) => Reply | Promise<Reply>;
  const routes: { method: string; template: string; operationId: string; handler: Handler }[] = [];
  const route = (method: string, template: string, operationId: string, handler: Handler) => {
    routes.push({ method, template, operationId, handler });
  };

  route("GET", "/projects/{project_id}", "getProject", (ctx) => ({
    status: 200,
    body: { project: clone(projectOf(ctx).project) },
  }));

  route("GET", "/projects/{project_id}/branches", "listProjectBranches", (ctx) => {
    const project = projectOf(ctx);
    const search = ctx.query.get("search")?.toLowerCase() ?? "";
    const sortBy = (ctx.query.get("sort_by") ?? "updated_at") as "name" | "created_at" | "updated_at";
    const sortOrder = ctx.query.get("sort_order") === "asc" ? "asc" : "desc";
    const limit = Number(ctx.query.get("limit") ?? "10000");
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, "invalid limit");
    const cursor = ctx.query.get("cursor");
    const offset = cursor ? Number(Buffer.from(cursor, "base64url").toString()) : 0;
    if (!Number.isInteger(offset) || offset < 0) throw new HttpError(400, "invalid cursor");
    const matching = [...project.branches.values()]
      .map((b) => b.branch)
      .filter((b) => !search || b.name.toLowerCase().includes(search) || b.id.includes(search))
      .sort((a, b) => (a[sortBy] < b[sortBy] ? -1 : a[sortBy] > b[sortBy] ? 1 : 0) * (sortOrder === "asc" ? 1 : -1));
    const page = matching.slice(offset, offset + limit);
    const more = offset + limit < matching.length;
    return {
      status: 200,
      body: {
        branches: clone(page),
        annotations: {},
        pagination: {
          ...(more ? { next: Buffer.from(String(offset + limit)).toString("base64url") } : {}),
          sort_by: sortBy,
          sort_order: sortOrder,
        },
      },
    };
  });

  route("POST", "/projects/{project_id}/branches", "createProjectBranch", (ctx) => {
    const project = projectOf(ctx);
    const body = ctx.body ?? {};
    if (!isRecord(body)) throw new HttpError(400, "invalid request body");
    const name = stringField(body, "branch", "name");
    const parentId = stringField(body, "branch", "parent_id");
    const parent = parentId
      ? project.branches.get(parentId)
      : [...project.branches.values()].find((b) => b.branch.default);
    if (!parent) throw new HttpError(404, `parent branch ${parentId} not found`);
    const branchName = name ?? friendlyId("br");
    if ([...project.branches.values()].some((b) => b.branch.name === branchName)) {
      throw new HttpError(409, `branch with name ${JSON.stringify(branchName)} already exists`);
    }
    const endpointSpecs = Array.isArray(body.endpoints) ? body.endpoints : [];
    const types = endpointSpecs.map((e) => (isRecord(e) ? e.type : undefined));
    if (types.some((t) => t !== "read_write" && t !== "read_only")) throw new HttpError(400, "invalid endpoint type");
    if (types.filter((t) => t === "read_write").length > 1) {
      throw new HttpError(400, "a branch can have only one read_write endpoint");
    }
    const branch = newBranch(project.project, branchName, parent, false);
    project.branches.set(branch.branch.id, branch);
    const operations = [newOperation(project, branch.branch.id, undefined, "create_timeline")];
    for (const type of types) {
      const endpoint = newEndpoint(project.project, branch.branch.id);
      endpoint.type = type as EndpointType;
      branch.endpoints.push(endpoint);
      operations.push(newOperation(project, branch.branch.id, endpoint.id, "start_compute"));
    }
    const endpoint = readWrite(branch);
    const connectionUris = endpoint
      ? [...branch.databases.values()].flatMap((database) => {
          const owner = branch.roles.get(database.owner_name);
          if (!owner) return [];
          const uri = placeholderUri(endpoint, owner, database.name, false);
          return [
            {
              connection_uri: uri,
              connection_parameters: {
                database: database.name,
                password: owner.password,
                role: owner.name,
                host: endpoint.host,
                pooler_host: poolerHost(endpoint),
              },
            },
          ];
        })
      : [];
    return {
      status: 201,
      body: {
        branch: clone(branch.branch),
        endpoints: clone(branch.endpoints),
        operations,
        roles: [...branch.roles.values()].map(stripPassword),
        databases: clone([...branch.databases.values()]),
        connection_uris: connectionUris,
      },
    };
  });

  route("GET", "/projects/{project_id}/branches/{branch_id}", "getProjectBranch", (ctx) => ({
    status: 200,
    body: { branch: clone(branchOf(ctx).branch.branch) },
  }));

  route("DELETE", "/projects/{project_id}/branches/{branch_id}", "deleteProjectBranch", (ctx) => {
    const project = projectOf(ctx);
    const branch = project.branches.get(ctx.params.branch_id ?? "");
    if (!branch) return { status: 204 };
    if (branch.branch.default) throw new HttpError(400, "cannot delete the default branch");
    if ([...project.branches.values()].some((b) => b.branch.parent_id === branch.branch.id)) {
      throw new HttpError(400, "cannot delete a branch that has child branches");
    }
    assertUnlocked(project, branch.branch.id);
    const operations = branch.endpoints.map((e) => newOperation(project, branch.branch.id, e.id, "suspend_compute"));
    operations.push(newOperation(project, branch.branch.id, undefined, "delete_timeline"));
    project.branches.delete(branch.branch.id);
    return { status: 200, body: { branch: clone(branch.branch), operations } };
  });

  route("GET", "/projects/{project_id}/branches/{branch_id}/roles", "listProjectBranchRoles", (ctx) => ({
    status: 200,
    body: { roles: [...branchOf(ctx).branch.roles.values()].map(stripPassword) },
  }));

  route("POST", "/projects/{project_id}/branches/{branch_id}/roles", "createProjectBranchRole", (ctx) => {
    const { project, branch } = branchOf(ctx);
    const name = stringField(ctx.body, "role", "name");
    if (!name || name.length > 63) throw new HttpError(400, "role name is required (at most 63 characters)");
    if (name.startsWith("pg_") || name === "neon_superuser") throw new HttpError(400, `role name ${name} is reserved`);
    if (branch.roles.has(name)) throw new HttpError(409, `role ${JSON.stringify(name)} already exists`);
    assertUnlocked(project, branch.branch.id);
    const at = now();
    const role = {
      branch_id: branch.branch.id,
      name,
      password: password(),
      protected: false,
      created_at: at,
      updated_at: at,
    };
    branch.roles.set(name, role);
    return { status: 201, body: { role: clone(role), operations: applyConfig(project, branch) } };
  });

  route("GET", "/projects/{project_id}/branches/{branch_id}/databases", "listProjectBranchDatabases", (ctx) => ({
    status: 200,
    body: { databases: clone([...branchOf(ctx).branch.databases.values()]) },
  }));

  route("POST", "/projects/{project_id}/branches/{branch_id}/databases", "createProjectBranchDatabase", (ctx) => {
    const { project, branch } = branchOf(ctx);
    const name = stringField(ctx.body, "database", "name");
    const owner = stringField(ctx.body, "database", "owner_name");
    if (!name || !owner) throw new HttpError(400, "database name and owner_name are required");
    if (!branch.roles.has(owner)) throw new HttpError(404, `role ${JSON.stringify(owner)} not found`);
    if (branch.databases.has(name)) throw new HttpError(409, `database ${JSON.stringify(name)} already exists`);
    assertUnlocked(project, branch.branch.id);
    const at = now();
    const database: Database = {
      id: databaseIds++,
      branch_id: branch.branch.id,
      name,
      owner_name: owner,
      created_at: at,
      updated_at: at,
    };
    branch.databases.set(name, database);
    return { status: 201, body: { database: clone(database), operations: applyConfig(project, branch) } };
  });

  route("GET", "/projects/{project_id}/operations/{operation_id}", "getProjectOperation", (ctx) => {
    const project = projectOf(ctx);
    const entry = project.operations.get(ctx.params.operation_id ?? "");
    if (!entry) throw new HttpError(404, `operation ${ctx.params.operation_id} not found`);
    if (isOpen(entry.operation)) {
      entry.pollsLeft--;
      if (entry.pollsLeft <= 0) settle(project, entry);
    }
    return { status: 200, body: { operation: clone(entry.operation) } };
  });

  route("GET", "/projects/{project_id}/connection_uri", "getConnectionURI", async (ctx) => {
    const project = projectOf(ctx);
    const databaseName = ctx.query.get("database_name");
    const roleName = ctx.query.get("role_name");
    if (!databaseName || !roleName) throw new HttpError(400, "database_name and role_name are required");
    const branchId = ctx.query.get("branch_id");
    const branch = branchId
      ? project.branches.get(branchId)
      : [...project.branches.values()].find((b) => b.branch.default);
    if (!branch) throw new HttpError(404, `branch ${branchId} not found`);
    const endpointId = ctx.query.get("endpoint_id");
    const endpoint = endpointId ? branch.endpoints.find((e) => e.id === endpointId) : readWrite(branch);
    if (!endpoint) throw new HttpError(404, "endpoint not found");
    const role = branch.roles.get(roleName);
    if (!role) throw new HttpError(404, `role ${JSON.stringify(roleName)} not found`);
    if (!branch.databases.has(databaseName))
      throw new HttpError(404, `database ${JSON.stringify(databaseName)} not found`);
    const pooled = ctx.query.get("pooled") === "true";
    const uri = options.databaseFor
      ? await options.databaseFor(branch.branch.id, databaseName, roleName, { pooled })
      : placeholderUri(endpoint, role, databaseName, pooled);
    return { status: 200, body: { uri } };
  });

  function poolerHost(endpoint: Endpoint) {
    const [first, ...rest] = endpoint.host.split(".");
    return [`${first}-pooler`, ...rest].join(".");
  }

  function placeholderUri(endpoint: Endpoint, role: Role, database: string, pooled: boolean) {
    const host = pooled ? poolerHost(endpoint) : endpoint.host;
    return `postgresql://${role.name}:${role.password ?? ""}@${host}/${database}?sslmode=require`;
  }

  // --- matching and serving --------------------------------------------------------------------

  function match(method: string, path: string) {
    const segments = path.split("/").filter(Boolean);
    let pathMatched = false;
    for (const r of routes) {
      const parts = r.template.split("/").filter(Boolean);
      if (parts.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const ok = parts.every((part, i) => {
        const segment = decodeURIComponent(segments[i] ?? "");
        if (part.startsWith("{")) {
          params[part.slice(1, -1)] = segment;
          return segment.length > 0;
        }
        return part === segment;
      });
      if (!ok) continue;
      pathMatched = true;
      if (r.method === method) return { route: r, params };
    }
    return { route: undefined, params: {}, pathMatched };
  }

  const routeKey = (r: { method: string; template: string }) => `${r.method} ${r.template}`;
  const matchesRoute = (r: { method: string; template: string; operationId: string }, name: string) =>
    routeKey(r) === name || r.operationId === name;

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > 1024 * 1024) throw new HttpError(413, "request body too large");
      chunks.push(chunk as Buffer);
    }
    if (size === 0) return undefined;
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      throw new HttpError(400, "request body is not valid JSON");
    }
  }

  async function handle(req: IncomingMessage): Promise<{ reply: Reply; call: Omit<FakeNeonCall, "status"> }> {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://fake-neon");
    const path = url.pathname.startsWith("/api/v2/") ? url.pathname.slice("/api/v2".length) : "";
    const query = url.searchParams;
    const found = path ? match(method, path) : { route: undefined, params: {}, pathMatched: false };
    const call = {
      method,
      route: found.route ? routeKey(found.route) : "unknown",
      operationId: found.route?.operationId,
      path: path || url.pathname,
      query: Object.fromEntries(query),
    };
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return { call, reply: errorReply(401, "authentication required") };
    }
    if (!found.route) {
      return { call, reply: errorReply(found.pathMatched ? 405 : 404, "not found") };
    }
    const fault = injected.find((f) => f.remaining > 0 && found.route && matchesRoute(found.route, f.route));
    if (fault) {
      fault.remaining--;
      return { call, reply: { ...errorReply(fault.status, `injected HTTP ${fault.status}`), headers: fault.headers } };
    }
    try {
      const body = method === "GET" || method === "DELETE" ? undefined : await readBody(req);
      return { call, reply: await found.route.handler({ params: found.params, query, body }) };
    } catch (error) {
      if (error instanceof HttpError) return { call, reply: errorReply(error.status, error.message) };
      return { call, reply: errorReply(500, "internal error") };
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    handle(req).then(
      ({ reply, call }) => {
        calls.push({ ...call, status: reply.status });
        const headers: Record<string, string> = { ...reply.headers };
        if (reply.body !== undefined) headers["content-type"] = "application/json";
        res.writeHead(reply.status, headers);
        res.end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
      },
      () => {
        res.writeHead(500).end();
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/v2`,
    apiKey,
    calls,
    count: (name) =>
      calls.filter((c) => c.route === name || (c.operationId !== undefined && c.operationId === name)).length,
    branches: (projectId) =>
      [...(projects.get(projectId)?.branches.values() ?? [])].map((b) => ({
        branch: clone(b.branch),
        endpoints: clone(b.endpoints),
        roles: clone([...b.roles.values()]),
        databases: clone([...b.databases.values()]),
      })),
    operations: (projectId) => [...(projects.get(projectId)?.operations.values() ?? [])].map((o) => clone(o.operation)),
    failNext(name, status, times = 1, headers = {}) {
      if (!routes.some((r) => matchesRoute(r, name))) throw new Error(`fake neon: no route ${JSON.stringify(name)}`);
      injected.push({ route: name, status, remaining: times, headers: { ...headers } });
    },
    failOperationNext() {
      failNextOperation = true;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
