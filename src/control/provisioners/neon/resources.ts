/**
 * The Neon resources of one tenant, each found before it is created: the branch (by id, else by
 * exact name), its roles, its database (owned by the tenant's owner role) and the connection URIs.
 * Every create passes a `recover` lookup to `callNeon`, so a create that timed out but took effect
 * is found instead of repeated, and every mutating call waits for the operations it started. A
 * branch found by id must carry the tenant's name: a saved ref pointing at the template, the default
 * branch or another tenant is refused, never reused or deleted.
 */
import type { Branch, Database, EndpointType, Operation, Role } from "@neondatabase/api-client";
import { ProvisionerError } from "../types.ts";
import { callNeon, type NeonClient, waitForOperations } from "./client.ts";
import type { NeonTenantNames } from "./names.ts";

export interface CreatedBranch {
  readonly branch: Branch;
  readonly operations: readonly Operation[];
  /** Roles and databases of the new branch when Neon told us (fresh create); unknown after a recovery. */
  readonly roles?: readonly Role[];
  readonly databases?: readonly Database[];
}

export async function getBranch(
  client: NeonClient,
  projectId: string,
  branchId: string,
  expectedName: string,
): Promise<Branch | undefined> {
  const branch = await callNeon(
    client,
    "GET /projects/{project_id}/branches/{branch_id}",
    async () => (await client.api.getProjectBranch(projectId, branchId)).data.branch,
    { notFound: () => undefined },
  );
  // A ref that points at another branch (the template, the default branch, another tenant) must
  // never be reused or deleted.
  if (branch && branch.name !== expectedName) {
    throw new ProvisionerError(
      "invalid_input",
      `Neon branch ${branchId} is named ${JSON.stringify(branch.name)}, not ${JSON.stringify(expectedName)}`,
    );
  }
  return branch;
}

async function findBranchByName(client: NeonClient, projectId: string, name: string): Promise<Branch | undefined> {
  let cursor: string | undefined;
  for (let page = 0; page < 100; page++) {
    const data = await callNeon(client, "GET /projects/{project_id}/branches", async () => {
      // `search` matches partial names and ids: filter for the exact name below.
      const response = await client.api.listProjectBranches({ projectId, search: name, cursor });
      return response.data;
    });
    const found = data.branches.find((b) => b.name === name);
    if (found) return found;
    const next = data.pagination?.next;
    if (!next || next === cursor || data.branches.length === 0) return undefined;
    cursor = next;
  }
  return undefined;
}

/** The tenant's branch: by the saved id when there is one (and it still exists), else by name. */
export async function findBranch(
  client: NeonClient,
  projectId: string,
  name: string,
  branchId?: string,
): Promise<Branch | undefined> {
  if (branchId) {
    const branch = await getBranch(client, projectId, branchId, name);
    if (branch) return branch;
  }
  return findBranchByName(client, projectId, name);
}

export async function createBranch(
  client: NeonClient,
  projectId: string,
  name: string,
  parentId: string | undefined,
): Promise<CreatedBranch> {
  return callNeon<CreatedBranch>(
    client,
    "POST /projects/{project_id}/branches",
    async () => {
      const { data } = await client.api.createProjectBranch(projectId, {
        // Without parent_id Neon branches from the project's default branch.
        branch: parentId ? { name, parent_id: parentId } : { name },
        endpoints: [{ type: "read_write" as EndpointType }],
      });
      return { branch: data.branch, operations: data.operations, roles: data.roles, databases: data.databases };
    },
    {
      recover: async () => {
        const branch = await findBranchByName(client, projectId, name);
        return branch ? { branch, operations: [] } : undefined;
      },
    },
  );
}

/** Deletes a branch and waits for it; succeeds when the branch is already gone. */
export async function deleteBranch(
  client: NeonClient,
  projectId: string,
  branchId: string,
  expectedName: string,
): Promise<void> {
  const operations = await callNeon(
    client,
    "DELETE /projects/{project_id}/branches/{branch_id}",
    // 200 with operations, or 204 when the branch is already gone.
    async () => (await client.api.deleteProjectBranch({ projectId, branchId })).data?.operations ?? ([] as Operation[]),
    {
      notFound: () => [] as Operation[],
      recover: async () =>
        (await getBranch(client, projectId, branchId, expectedName)) ? undefined : ([] as Operation[]),
    },
  );
  await waitForOperations(client, projectId, operations);
}

export async function listRoles(client: NeonClient, projectId: string, branchId: string): Promise<readonly Role[]> {
  return callNeon(
    client,
    "GET /projects/{project_id}/branches/{branch_id}/roles",
    async () => (await client.api.listProjectBranchRoles(projectId, branchId)).data.roles,
  );
}

export async function listDatabases(
  client: NeonClient,
  projectId: string,
  branchId: string,
): Promise<readonly Database[]> {
  return callNeon(
    client,
    "GET /projects/{project_id}/branches/{branch_id}/databases",
    async () => (await client.api.listProjectBranchDatabases(projectId, branchId)).data.databases,
  );
}

export async function ensureRole(
  client: NeonClient,
  projectId: string,
  branchId: string,
  name: string,
  existing: readonly Role[],
): Promise<void> {
  if (existing.some((r) => r.name === name)) return;
  const operations = await callNeon(
    client,
    "POST /projects/{project_id}/branches/{branch_id}/roles",
    // The response carries the new password: it is dropped here; the URIs come from connection_uri.
    async () => (await client.api.createProjectBranchRole(projectId, branchId, { role: { name } })).data.operations,
    {
      recover: async () =>
        (await listRoles(client, projectId, branchId)).some((r) => r.name === name) ? ([] as Operation[]) : undefined,
    },
  );
  await waitForOperations(client, projectId, operations);
}

export async function ensureDatabase(
  client: NeonClient,
  projectId: string,
  branchId: string,
  names: NeonTenantNames,
  existing: readonly Database[],
): Promise<void> {
  const check = (databases: readonly Database[]) => {
    const database = databases.find((d) => d.name === names.database);
    if (database && database.owner_name !== names.ownerRole) {
      throw new ProvisionerError(
        "invalid_input",
        `database ${names.database} on Neon branch ${branchId} is owned by ${database.owner_name}, not ${names.ownerRole}`,
      );
    }
    return database !== undefined;
  };
  if (check(existing)) return;
  const operations = await callNeon(
    client,
    "POST /projects/{project_id}/branches/{branch_id}/databases",
    async () =>
      (
        await client.api.createProjectBranchDatabase(projectId, branchId, {
          database: { name: names.database, owner_name: names.ownerRole },
        })
      ).data.operations,
    {
      recover: async () => (check(await listDatabases(client, projectId, branchId)) ? ([] as Operation[]) : undefined),
    },
  );
  await waitForOperations(client, projectId, operations);
}

export async function connectionUri(
  client: NeonClient,
  projectId: string,
  branchId: string,
  database: string,
  role: string,
  pooled: boolean,
): Promise<string> {
  return callNeon(
    client,
    "GET /projects/{project_id}/connection_uri",
    async () =>
      (
        await client.api.getConnectionUri({
          projectId,
          branch_id: branchId,
          database_name: database,
          role_name: role,
          pooled,
        })
      ).data.uri,
  );
}
