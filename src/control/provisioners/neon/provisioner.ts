/**
 * The `neon` provisioner: one Neon branch per tenant, in the Neon project that serves the tenant's
 * region, branched from that project's template branch (or its default branch), with the tenant's
 * own roles and database on it. This file is the factory and the order of the steps; the API
 * client with its retries and operation polling is in client.ts, each resource's find-or-create in
 * resources.ts, the tenant's names in names.ts.
 *
 * Idempotent and resumable: every name is deterministic, every step first looks for what exists (by
 * `previous.branchId`, else by name) and only creates what is missing, and every mutating call
 * waits for the operations it started. An interrupted run resumes where it stopped without a
 * second branch.
 *
 * Roles and least privilege on Neon. Roles created through the Neon API are always members of
 * `neon_superuser` (CREATEDB, CREATEROLE, BYPASSRLS, pg_read_all_data, pg_write_all_data). So only
 * `<slug>_owner` is made through the API: it owns the tenant database (and every table the
 * migrations create) and is handed out only in `migrationUri` (direct, unpooled: migrations need
 * session features). `<slug>_app`, the role of tenant traffic in `connectionUri` (pooled), is made
 * with SQL as the owner, with DML rights only (app-role.ts), as the `local` provisioner's role. The
 * blast radius of either is the tenant's own branch (one branch per tenant, its own endpoint).
 */
import type { Database, Role } from "@neondatabase/api-client";
import {
  type Provisioner,
  ProvisionerError,
  type ProvisionRequest,
  type ProvisionResult,
  type ResourceRef,
} from "../types.ts";
import { ensureAppRole } from "./app-role.ts";
import { createNeonClient, type NeonClient, type NeonClientOptions, waitForOperations } from "./client.ts";
import { neonNames } from "./names.ts";
import {
  connectionUri,
  createBranch,
  deleteBranch,
  ensureDatabase,
  ensureRole,
  findBranch,
  listDatabases,
  listRoles,
} from "./resources.ts";

export interface NeonRegionTarget {
  /** The Neon project that holds this region's tenant branches. */
  readonly projectId: string;
  /** Branch every tenant branch is created from (schema template). Default: the project's default branch. */
  readonly templateBranchId?: string;
}

export interface NeonProvisionerOptions extends NeonClientOptions {
  /** Region name → the Neon project (and template branch) serving it. */
  readonly regions: Readonly<Record<string, NeonRegionTarget>>;
  /**
   * Called with the partial ref after each completed step (branch ready, roles ready, database
   * ready), so a caller can persist it before the next step: the `Provisioner` interface only
   * returns the ref on success. Errors thrown here abort the provision.
   */
  readonly onProgress?: (request: ProvisionRequest, ref: ResourceRef) => void | Promise<void>;
}

type Regions = Readonly<Record<string, NeonRegionTarget>>;

export function createNeonProvisioner(options: NeonProvisionerOptions): Provisioner {
  const client = createNeonClient(options);
  const regions: Regions = { ...options.regions };
  return {
    kind: "neon",
    regions: () => Object.keys(regions),
    provision: (request, previous) => provision(client, regions, options.onProgress, request, previous),
    async deprovision(request, ref) {
      const names = neonNames(request.slug);
      const projectId = projectFor(regions, request, ref);
      const branch = await findBranch(client, projectId, names.branch, ref.branchId);
      if (!branch) return;
      if (branch.default) {
        throw new ProvisionerError(
          "invalid_input",
          `refusing to delete Neon branch ${branch.id}: it is the default branch`,
        );
      }
      await deleteBranch(client, projectId, branch.id, names.branch);
    },
    async exists(request, ref) {
      const names = neonNames(request.slug);
      const projectId = projectFor(regions, request, ref);
      return (await findBranch(client, projectId, names.branch, ref.branchId)) !== undefined;
    },
  };
}

/** The Neon project of a tenant: the saved ref's, which must agree with its region's; else its region's. */
function projectFor(regions: Regions, request: ProvisionRequest, ref?: ResourceRef): string {
  const target = Object.hasOwn(regions, request.region) ? regions[request.region] : undefined;
  if (ref?.projectId) {
    if (target && target.projectId !== ref.projectId) {
      throw new ProvisionerError(
        "invalid_input",
        `the saved ref names Neon project ${ref.projectId}, but region ${request.region} is served by ${target.projectId}`,
      );
    }
    return ref.projectId;
  }
  if (!target) {
    throw new ProvisionerError("region_unsupported", `no Neon project is configured for region ${request.region}`);
  }
  return target.projectId;
}

/** The steps in order: branch, owner role, database, app role and URIs; the partial ref is reported after each. */
async function provision(
  client: NeonClient,
  regions: Regions,
  onProgress: NeonProvisionerOptions["onProgress"],
  request: ProvisionRequest,
  previous: ResourceRef | undefined,
): Promise<ProvisionResult> {
  const names = neonNames(request.slug);
  if (!Object.hasOwn(regions, request.region)) {
    throw new ProvisionerError("region_unsupported", `no Neon project is configured for region ${request.region}`);
  }
  const projectId = projectFor(regions, request, previous);
  const template = regions[request.region]?.templateBranchId;
  const progress = async (ref: ResourceRef) => {
    await onProgress?.(request, ref);
  };

  // 1. The branch (with its read_write endpoint).
  let roles: readonly Role[] | undefined;
  let databases: readonly Database[] | undefined;
  let branch = await findBranch(client, projectId, names.branch, previous?.branchId);
  if (!branch) {
    const created = await createBranch(client, projectId, names.branch, template);
    branch = created.branch;
    roles = created.roles;
    databases = created.databases;
    await waitForOperations(client, projectId, created.operations);
  }
  const ref: Record<string, string> = {
    region: request.region,
    projectId,
    branchId: branch.id,
    branchName: names.branch,
  };
  await progress({ ...ref });

  // 2. The owner role (the app role is made with SQL once the database exists: step 4).
  roles ??= await listRoles(client, projectId, branch.id);
  await ensureRole(client, projectId, branch.id, names.ownerRole, roles);
  ref.ownerRole = names.ownerRole;
  await progress({ ...ref });

  // 3. The database, owned by the owner role.
  databases ??= await listDatabases(client, projectId, branch.id);
  await ensureDatabase(client, projectId, branch.id, names, databases);
  ref.databaseName = names.database;
  await progress({ ...ref });

  // 4. The app role, with SQL as the owner; connection strings: pooled for app traffic, direct for migrations.
  const migration = await connectionUri(client, projectId, branch.id, names.database, names.ownerRole, false);
  const ownerPooled = await connectionUri(client, projectId, branch.id, names.database, names.ownerRole, true);
  const connection = await ensureAppRole(migration, ownerPooled, names.appRole);
  ref.appRole = names.appRole;
  await progress({ ...ref });
  return { ref, connectionUri: connection, migrationUri: migration };
}
