/**
 * The fake Neon API's in-memory model and its rules, without HTTP: projects seeded with a default
 * branch `main` (role `neondb_owner`, database `neondb`, an idle compute); branches that copy
 * their parent's roles and databases and have unique names; roles and databases that are unique
 * per branch, with Neon's reserved role names refused; no change on a branch while its operations
 * run (see `operations.ts`); a deleted branch may have no children and may not be the default.
 * Each function takes what the request named and either changes the store or throws a
 * `FakeNeonStateError`; what it returns is a copy the caller may hand out.
 */
import type { Branch, Database, Endpoint, EndpointState, EndpointType, Operation } from "@neondatabase/api-client";
import type { FakeBranch, FakeBranchState, FakeNeonState, FakeProject } from "./model.ts";
import { FakeNeonStateError } from "./model.ts";
import { assertUnlocked, startOperation } from "./operations.ts";
import {
  branchRecord,
  databaseRecord,
  endpointRecord,
  friendlyId,
  now,
  projectRecord,
  type RoleWithPassword,
  roleRecord,
} from "./records.ts";

export interface FakeNeonProjectOptions {
  readonly id: string;
  /** Neon region id, e.g. `aws-eu-central-1`. */
  readonly regionId: string;
  /** Id of the project's default (root) branch `main`; generated when absent. */
  readonly defaultBranchId?: string;
}

export interface FakeNeonStateOptions {
  /** Default: one project `fake-project` in `aws-us-east-2`. */
  readonly projects?: readonly FakeNeonProjectOptions[];
  /** Polls of an operation before it reports `finished` (earlier polls say `running`); default 2. */
  readonly operationPolls?: number;
}

const clone = <T>(value: T): T => structuredClone(value);

export function createFakeNeonState(options: FakeNeonStateOptions = {}): FakeNeonState {
  const state: FakeNeonState = {
    projects: new Map(),
    operationPolls: Math.max(1, options.operationPolls ?? 2),
    failNextOperation: false,
    nextDatabaseId: 1_000,
  };
  for (const spec of options.projects ?? [{ id: "fake-project", regionId: "aws-us-east-2" }]) addProject(state, spec);
  return state;
}

/** A project as Neon creates it: a ready default branch with an owner role, a database and an idle compute. */
function addProject(state: FakeNeonState, spec: FakeNeonProjectOptions): void {
  const at = now();
  const project: FakeProject = {
    project: projectRecord(spec.id, spec.regionId, at),
    branches: new Map(),
    operations: new Map(),
  };
  state.projects.set(spec.id, project);
  const main = newBranch(state, project, "main", undefined, true);
  if (spec.defaultBranchId) main.branch.id = spec.defaultBranchId;
  main.roles.set("neondb_owner", roleRecord(main.branch.id, "neondb_owner", at));
  main.databases.set("neondb", databaseRecord(state.nextDatabaseId++, main.branch.id, "neondb", "neondb_owner", at));
  const endpoint = endpointRecord(project.project, main.branch.id);
  endpoint.current_state = "idle" as EndpointState;
  delete endpoint.pending_state;
  main.endpoints.push(endpoint);
  project.branches.set(main.branch.id, main);
}

/** A branch with a fresh id, holding copies of its parent's roles and databases (not yet stored). */
function newBranch(
  state: FakeNeonState,
  project: FakeProject,
  name: string,
  parent: FakeBranch | undefined,
  isDefault: boolean,
): FakeBranch {
  let id = friendlyId("br");
  while (project.branches.has(id)) id = friendlyId("br");
  const branch = branchRecord(project.project.id, id, name, parent?.branch.id, isDefault);
  const roles = new Map<string, RoleWithPassword>();
  const databases = new Map<string, Database>();
  for (const role of parent?.roles.values() ?? []) roles.set(role.name, { ...role, branch_id: id });
  for (const database of parent?.databases.values() ?? []) {
    databases.set(database.name, { ...database, id: state.nextDatabaseId++, branch_id: id });
  }
  return { branch, endpoints: [], roles, databases };
}

export function findProject(state: FakeNeonState, projectId: string): FakeProject {
  const project = state.projects.get(projectId);
  if (!project) throw new FakeNeonStateError("not_found", `project ${projectId} not found`);
  return project;
}

export function findBranch(project: FakeProject, branchId: string): FakeBranch {
  const branch = project.branches.get(branchId);
  if (!branch) throw new FakeNeonStateError("not_found", `branch ${branchId} not found`);
  return branch;
}

const defaultBranch = (project: FakeProject) => [...project.branches.values()].find((b) => b.branch.default);
export const readWriteEndpoint = (branch: FakeBranch) => branch.endpoints.find((e) => e.type === "read_write");

export interface BranchQuery {
  /** Matches a substring of the name (any case) or of the id; empty matches all. */
  readonly search: string;
  readonly sortBy: "name" | "created_at" | "updated_at";
  readonly sortOrder: "asc" | "desc";
  readonly offset: number;
  readonly limit: number;
}

/** One page of the project's branches (copies) and whether more follow it. */
export function listBranches(project: FakeProject, query: BranchQuery): { page: Branch[]; more: boolean } {
  const { search, sortBy, sortOrder, offset, limit } = query;
  const matching = [...project.branches.values()]
    .map((b) => b.branch)
    .filter((b) => !search || b.name.toLowerCase().includes(search) || b.id.includes(search))
    .sort((a, b) => (a[sortBy] < b[sortBy] ? -1 : a[sortBy] > b[sortBy] ? 1 : 0) * (sortOrder === "asc" ? 1 : -1));
  return { page: clone(matching.slice(offset, offset + limit)), more: offset + limit < matching.length };
}

export interface NewBranchInput {
  /** Generated when absent, like Neon. */
  readonly name: string | undefined;
  /** The project's default branch when absent. */
  readonly parentId: string | undefined;
  /** The `type` of each requested endpoint, unchecked. */
  readonly endpointTypes: readonly unknown[];
}

/** Creates a branch (with its endpoints) and the operations that make it ready. Returns the stored branch. */
export function createBranch(
  state: FakeNeonState,
  project: FakeProject,
  input: NewBranchInput,
): { branch: FakeBranch; operations: Operation[] } {
  const parent = input.parentId ? project.branches.get(input.parentId) : defaultBranch(project);
  if (!parent) throw new FakeNeonStateError("not_found", `parent branch ${input.parentId} not found`);
  const branchName = input.name ?? friendlyId("br");
  if ([...project.branches.values()].some((b) => b.branch.name === branchName)) {
    throw new FakeNeonStateError("conflict", `branch with name ${JSON.stringify(branchName)} already exists`);
  }
  const types = input.endpointTypes;
  if (types.some((t) => t !== "read_write" && t !== "read_only")) {
    throw new FakeNeonStateError("invalid", "invalid endpoint type");
  }
  if (types.filter((t) => t === "read_write").length > 1) {
    throw new FakeNeonStateError("invalid", "a branch can have only one read_write endpoint");
  }
  const branch = newBranch(state, project, branchName, parent, false);
  project.branches.set(branch.branch.id, branch);
  const operations = [startOperation(state, project, branch.branch.id, undefined, "create_timeline")];
  for (const type of types) {
    const endpoint = endpointRecord(project.project, branch.branch.id);
    endpoint.type = type as EndpointType;
    branch.endpoints.push(endpoint);
    operations.push(startOperation(state, project, branch.branch.id, endpoint.id, "start_compute"));
  }
  return { branch, operations };
}

/** Deletes a branch; `undefined` when there was none (Neon answers that with 204). */
export function deleteBranch(
  state: FakeNeonState,
  project: FakeProject,
  branchId: string,
): { branch: Branch; operations: Operation[] } | undefined {
  const branch = project.branches.get(branchId);
  if (!branch) return undefined;
  if (branch.branch.default) throw new FakeNeonStateError("invalid", "cannot delete the default branch");
  if ([...project.branches.values()].some((b) => b.branch.parent_id === branch.branch.id)) {
    throw new FakeNeonStateError("invalid", "cannot delete a branch that has child branches");
  }
  assertUnlocked(project, branch.branch.id);
  const operations = branch.endpoints.map((e) =>
    startOperation(state, project, branch.branch.id, e.id, "suspend_compute"),
  );
  operations.push(startOperation(state, project, branch.branch.id, undefined, "delete_timeline"));
  project.branches.delete(branch.branch.id);
  return { branch: clone(branch.branch), operations };
}

/** Operations a config change (role, database) starts: apply_config on the read_write endpoint. */
function applyConfig(state: FakeNeonState, project: FakeProject, branch: FakeBranch): Operation[] {
  const endpoint = readWriteEndpoint(branch);
  return endpoint ? [startOperation(state, project, branch.branch.id, endpoint.id, "apply_config")] : [];
}

export function createRole(
  state: FakeNeonState,
  project: FakeProject,
  branch: FakeBranch,
  name: string | undefined,
): { role: RoleWithPassword; operations: Operation[] } {
  if (!name || name.length > 63)
    throw new FakeNeonStateError("invalid", "role name is required (at most 63 characters)");
  if (name.startsWith("pg_") || name === "neon_superuser") {
    throw new FakeNeonStateError("invalid", `role name ${name} is reserved`);
  }
  if (branch.roles.has(name)) throw new FakeNeonStateError("conflict", `role ${JSON.stringify(name)} already exists`);
  assertUnlocked(project, branch.branch.id);
  const role = roleRecord(branch.branch.id, name, now());
  branch.roles.set(name, role);
  return { role: clone(role), operations: applyConfig(state, project, branch) };
}

export function createDatabase(
  state: FakeNeonState,
  project: FakeProject,
  branch: FakeBranch,
  input: { readonly name: string | undefined; readonly ownerName: string | undefined },
): { database: Database; operations: Operation[] } {
  const { name, ownerName } = input;
  if (!name || !ownerName) throw new FakeNeonStateError("invalid", "database name and owner_name are required");
  if (!branch.roles.has(ownerName)) {
    throw new FakeNeonStateError("not_found", `role ${JSON.stringify(ownerName)} not found`);
  }
  if (branch.databases.has(name)) {
    throw new FakeNeonStateError("conflict", `database ${JSON.stringify(name)} already exists`);
  }
  assertUnlocked(project, branch.branch.id);
  const database = databaseRecord(state.nextDatabaseId++, branch.branch.id, name, ownerName, now());
  branch.databases.set(name, database);
  return { database: clone(database), operations: applyConfig(state, project, branch) };
}

export interface ConnectionQuery {
  readonly roleName: string;
  readonly databaseName: string;
  /** The project's default branch when absent. */
  readonly branchId: string | undefined;
  /** The branch's read_write endpoint when absent. */
  readonly endpointId: string | undefined;
}

/** What a connection string is made of; each part must exist. */
export function connectionTarget(
  project: FakeProject,
  query: ConnectionQuery,
): { branch: FakeBranch; endpoint: Endpoint; role: RoleWithPassword } {
  const { branchId, endpointId, roleName, databaseName } = query;
  const branch = branchId ? project.branches.get(branchId) : defaultBranch(project);
  if (!branch) throw new FakeNeonStateError("not_found", `branch ${branchId} not found`);
  const endpoint = endpointId ? branch.endpoints.find((e) => e.id === endpointId) : readWriteEndpoint(branch);
  if (!endpoint) throw new FakeNeonStateError("not_found", "endpoint not found");
  const role = branch.roles.get(roleName);
  if (!role) throw new FakeNeonStateError("not_found", `role ${JSON.stringify(roleName)} not found`);
  if (!branch.databases.has(databaseName)) {
    throw new FakeNeonStateError("not_found", `database ${JSON.stringify(databaseName)} not found`);
  }
  return { branch, endpoint, role };
}

/** Copies of a project's branches, roles with passwords; empty for an unknown project. */
export function branchSnapshots(state: FakeNeonState, projectId: string): FakeBranchState[] {
  return [...(state.projects.get(projectId)?.branches.values() ?? [])].map((b) => ({
    branch: clone(b.branch),
    endpoints: clone(b.endpoints),
    roles: clone([...b.roles.values()]),
    databases: clone([...b.databases.values()]),
  }));
}

/** Copies of a project's operations, in the order they started. */
export function operationSnapshots(state: FakeNeonState, projectId: string): Operation[] {
  return [...(state.projects.get(projectId)?.operations.values() ?? [])].map((o) => clone(o.operation));
}
