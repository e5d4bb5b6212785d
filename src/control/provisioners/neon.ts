/**
 * The `neon` provisioner: one Neon branch per tenant, in the Neon project that serves the tenant's
 * region, branched from that project's template branch (or its default branch), with the tenant's
 * own roles and database on it. Talks to the Neon API through `@neondatabase/api-client` using
 * axios' `fetch` adapter, so the same code runs in Node and inside a Cloudflare Worker (no `node:`
 * imports here).
 *
 * Idempotent and resumable: every name is deterministic (`tenant-<slug>` branch, `tenant_<slug>`
 * database, `<slug>_owner` / `<slug>_app` roles, dashes in the slug become underscores), every step
 * first looks for what exists (by `previous.branchId`, else by name) and only creates what is
 * missing, and every mutating call waits for the operations it started. An interrupted run resumes
 * where it stopped without a second branch.
 *
 * Roles and least privilege on Neon. Roles created through the Neon API are always members of
 * `neon_superuser` (CREATEDB, CREATEROLE, BYPASSRLS, pg_read_all_data, pg_write_all_data), and the
 * API has no way to create a role without it. What the API alone can give us is used:
 * - `<slug>_owner` owns the tenant database (and so every table the migrations create). It is only
 *   handed out in `migrationUri` (direct, unpooled: migrations need session features).
 * - `<slug>_app` is a separate role for tenant traffic, in `connectionUri` (pooled). It is not the
 *   owner, so it cannot ALTER or DROP the schema or the database; its DML rights come from
 *   `pg_write_all_data` through `neon_superuser`.
 * The blast radius of either role is the tenant's own branch (roles exist per branch, one branch
 * per tenant, its own compute endpoint), never another tenant. Still, `_app` can read/write every
 * table on its branch (including the migration ledger), create roles and databases there, and
 * bypass RLS. FOLLOW-UP: true least privilege (like the `local` provisioner) needs SQL, which the
 * API cannot do: as `_owner`, `CREATE ROLE <slug>_app LOGIN PASSWORD … NOSUPERUSER NOCREATEDB
 * NOCREATEROLE` plus explicit DML grants, then build the pooled URI from the endpoint host with that
 * password (Neon's connection_uri endpoint does not know passwords of SQL-created roles).
 */
import {
  type Api,
  type Branch,
  createApiClient,
  type Database,
  type EndpointType,
  type Operation,
  type Role,
} from "@neondatabase/api-client";
import {
  type Provisioner,
  ProvisionerError,
  type ProvisionRequest,
  type ProvisionResult,
  type ResourceRef,
} from "./types.ts";

export const NEON_API_BASE_URL = "https://console.neon.tech/api/v2";

export interface NeonRegionTarget {
  /** The Neon project that holds this region's tenant branches. */
  readonly projectId: string;
  /** Branch every tenant branch is created from (schema template). Default: the project's default branch. */
  readonly templateBranchId?: string;
}

export interface NeonRetryOptions {
  /** Total tries per API call, the first included. Default 5. */
  readonly attempts?: number;
  /** First backoff delay; doubles per retry, with jitter. Default 1000 ms. */
  readonly baseDelayMs?: number;
  /** Cap on a backoff delay (a server's `Retry-After` is honoured as given). Default 20000 ms. */
  readonly maxDelayMs?: number;
}

export interface NeonProvisionerOptions {
  readonly apiKey: string;
  /** Neon API base URL. Default `https://console.neon.tech/api/v2`. */
  readonly baseURL?: string;
  /** Region name → the Neon project (and template branch) serving it. */
  readonly regions: Readonly<Record<string, NeonRegionTarget>>;
  readonly retry?: NeonRetryOptions;
  /** Interval between polls of a running operation. Default 1000 ms. */
  readonly operationPollMs?: number;
  /** How long one operation may run before the step fails with `operation_failed`. Default 120000 ms. */
  readonly operationTimeoutMs?: number;
  /** Timeout of one HTTP request to the Neon API. Default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** Injectable for tests. Default: a `setTimeout` promise. */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Called with the partial ref after each completed step (branch ready, roles ready, database
   * ready), so a caller can persist it before the next step: the `Provisioner` interface only
   * returns the ref on success. Errors thrown here abort the provision.
   */
  readonly onProgress?: (request: ProvisionRequest, ref: ResourceRef) => void | Promise<void>;
}

export interface NeonTenantNames {
  readonly branch: string;
  readonly database: string;
  /** Owns the database; used for migrations only. */
  readonly ownerRole: string;
  /** Tenant app traffic. */
  readonly appRole: string;
}

const SLUG = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

/** Deterministic Neon names for a tenant slug; refuses slugs that cannot make valid names. */
export function neonNames(slug: string): NeonTenantNames {
  if (!SLUG.test(slug) || slug.includes("--")) {
    throw new ProvisionerError("invalid_input", `invalid tenant slug ${JSON.stringify(slug)}`);
  }
  const base = slug.replaceAll("-", "_");
  // Postgres reserves role names starting with `pg_`.
  if (base.startsWith("pg_")) {
    throw new ProvisionerError("invalid_input", `tenant slug ${JSON.stringify(slug)} would make a reserved role name`);
  }
  return { branch: `tenant-${slug}`, database: `tenant_${base}`, ownerRole: `${base}_owner`, appRole: `${base}_app` };
}

// ---------------------------------------------------------------------------------------------
// HTTP failures, retries, redaction

/** What we know about a failed API call. Built from axios errors without keeping them (they carry the API key in their config). */
interface Failure {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly detail: string;
}

function header(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== "object") return undefined;
  const get = (headers as { get?: unknown }).get;
  const value =
    typeof get === "function"
      ? (get as (n: string) => unknown).call(headers, name)
      : (headers as Record<string, unknown>)[name];
  return typeof value === "string" ? value : value == null ? undefined : String(value);
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function toFailure(error: unknown): Failure {
  const e = error as {
    isAxiosError?: boolean;
    response?: { status?: number; headers?: unknown; data?: unknown };
    code?: string;
    message?: string;
  } | null;
  const response = e?.isAxiosError ? e.response : undefined;
  if (response && typeof response.status === "number") {
    const data = response.data as { message?: unknown; code?: unknown } | undefined;
    const message = data && typeof data === "object" && typeof data.message === "string" ? data.message : "";
    return {
      status: response.status,
      retryAfterMs: parseRetryAfter(header(response.headers, "retry-after")),
      detail: message,
    };
  }
  // No response: a network error or a timeout. Keep only the short code / message.
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  return { detail: [code, message].filter(Boolean).join(" ") || "network error" };
}

/** 423 (resource locked by a running operation) and 503 are documented as safe to retry; 429 and other 5xx are rate limits and hiccups. */
const isRetryable = (f: Failure) => f.status === undefined || f.status === 429 || f.status === 423 || f.status >= 500;
/** The request was certainly not carried out (rejected before processing), so a retry cannot duplicate anything. */
const wasRejected = (f: Failure) => f.status === 429 || f.status === 423 || f.status === 503;

// ---------------------------------------------------------------------------------------------

interface CreatedBranch {
  readonly branch: Branch;
  readonly operations: readonly Operation[];
  /** Roles and databases of the new branch when Neon told us (fresh create); unknown after a recovery. */
  readonly roles?: readonly Role[];
  readonly databases?: readonly Database[];
}

const OPERATION_DONE = new Set<string>(["finished", "skipped"]);
const OPERATION_FAILED = new Set<string>(["failed", "error", "cancelled", "cancelling"]);

export function createNeonProvisioner(options: NeonProvisionerOptions): Provisioner {
  if (!options.apiKey) throw new ProvisionerError("invalid_input", "the neon provisioner needs an API key");
  const apiKey = options.apiKey;
  const attempts = Math.max(1, options.retry?.attempts ?? 5);
  const baseDelayMs = options.retry?.baseDelayMs ?? 1_000;
  const maxDelayMs = options.retry?.maxDelayMs ?? 20_000;
  const pollMs = options.operationPollMs ?? 1_000;
  const operationTimeoutMs = options.operationTimeoutMs ?? 120_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const regions = { ...options.regions };

  const api: Api<unknown> = createApiClient({
    apiKey,
    baseURL: options.baseURL ?? NEON_API_BASE_URL,
    adapter: "fetch",
    timeout: options.requestTimeoutMs ?? 30_000,
  });

  /** Removes the API key and passwords from text that may reach a message or a log. */
  const redact = (text: string): string =>
    text
      .split(apiKey)
      .join("[redacted]")
      .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)[^@\s]*@/gi, "$1[redacted]@")
      .replace(/(password=)[^&\s]+/gi, "$1[redacted]")
      .slice(0, 300);

  const upstreamError = (label: string, failure: Failure, tries: number) =>
    new ProvisionerError(
      "upstream_failed",
      redact(
        `Neon API ${label} failed` +
          (failure.status === undefined ? "" : ` with HTTP ${failure.status}`) +
          (tries > 1 ? ` after ${tries} attempts` : "") +
          (failure.detail ? `: ${failure.detail}` : ""),
      ),
    );

  const backoff = (retry: number, failure: Failure) => {
    if (failure.retryAfterMs !== undefined) return failure.retryAfterMs;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  };

  /**
   * One API call with retries on 429, 423, 5xx and network errors. For calls that change
   * something, `recover` runs before a retry whose failed attempt may have taken effect (5xx,
   * network error) and on 409; when it finds the result, that ends the call instead of a second
   * create. `notFound` turns a 404 into a value instead of an error.
   */
  async function call<T, N = never>(
    label: string,
    send: () => Promise<T>,
    opts: { recover?: () => Promise<T | undefined>; notFound?: () => N } = {},
  ): Promise<T | N> {
    let needsRecovery = false;
    for (let attempt = 1; ; attempt++) {
      if (needsRecovery && opts.recover) {
        const found = await opts.recover();
        if (found !== undefined) return found;
      }
      try {
        return await send();
      } catch (error) {
        const failure = toFailure(error);
        if (failure.status === 404 && opts.notFound) return opts.notFound();
        if (failure.status === 409 && opts.recover) {
          const found = await opts.recover();
          if (found !== undefined) return found;
        }
        if (!isRetryable(failure) || attempt >= attempts) throw upstreamError(label, failure, attempt);
        needsRecovery = !wasRejected(failure);
        await sleep(backoff(attempt, failure));
      }
    }
  }

  /** Waits until each operation finished; a failed, cancelled or timed-out one fails the step. */
  async function waitForOperations(projectId: string, operations: readonly Operation[] | undefined): Promise<void> {
    for (const initial of operations ?? []) {
      let operation = initial;
      const started = Date.now();
      let waited = 0;
      for (;;) {
        if (OPERATION_DONE.has(operation.status)) break;
        if (OPERATION_FAILED.has(operation.status)) {
          throw new ProvisionerError(
            "operation_failed",
            redact(
              `Neon operation ${operation.id} (${operation.action}) ended ${operation.status}` +
                (operation.error ? `: ${operation.error}` : ""),
            ),
          );
        }
        if (waited >= operationTimeoutMs || Date.now() - started >= operationTimeoutMs) {
          throw new ProvisionerError(
            "operation_failed",
            `Neon operation ${operation.id} (${operation.action}) still ${operation.status} after ${operationTimeoutMs} ms`,
          );
        }
        await sleep(pollMs);
        waited += pollMs;
        operation = await call("GET /projects/{project_id}/operations/{operation_id}", async () => {
          const { data } = await api.getProjectOperation(projectId, initial.id);
          return data.operation;
        });
      }
    }
  }

  function projectFor(request: ProvisionRequest, ref?: ResourceRef): string {
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

  async function getBranch(projectId: string, branchId: string, expectedName: string): Promise<Branch | undefined> {
    const branch = await call(
      "GET /projects/{project_id}/branches/{branch_id}",
      async () => (await api.getProjectBranch(projectId, branchId)).data.branch,
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

  async function findBranchByName(projectId: string, name: string): Promise<Branch | undefined> {
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const data = await call("GET /projects/{project_id}/branches", async () => {
        // `search` matches partial names and ids: filter for the exact name below.
        const response = await api.listProjectBranches({ projectId, search: name, cursor });
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

  async function findBranch(projectId: string, name: string, branchId?: string): Promise<Branch | undefined> {
    if (branchId) {
      const branch = await getBranch(projectId, branchId, name);
      if (branch) return branch;
    }
    return findBranchByName(projectId, name);
  }

  async function createBranch(projectId: string, name: string, parentId: string | undefined): Promise<CreatedBranch> {
    return call<CreatedBranch>(
      "POST /projects/{project_id}/branches",
      async () => {
        const { data } = await api.createProjectBranch(projectId, {
          // Without parent_id Neon branches from the project's default branch.
          branch: parentId ? { name, parent_id: parentId } : { name },
          endpoints: [{ type: "read_write" as EndpointType }],
        });
        return { branch: data.branch, operations: data.operations, roles: data.roles, databases: data.databases };
      },
      {
        recover: async () => {
          const branch = await findBranchByName(projectId, name);
          return branch ? { branch, operations: [] } : undefined;
        },
      },
    );
  }

  async function listRoles(projectId: string, branchId: string): Promise<readonly Role[]> {
    return call(
      "GET /projects/{project_id}/branches/{branch_id}/roles",
      async () => (await api.listProjectBranchRoles(projectId, branchId)).data.roles,
    );
  }

  async function listDatabases(projectId: string, branchId: string): Promise<readonly Database[]> {
    return call(
      "GET /projects/{project_id}/branches/{branch_id}/databases",
      async () => (await api.listProjectBranchDatabases(projectId, branchId)).data.databases,
    );
  }

  async function ensureRole(projectId: string, branchId: string, name: string, existing: readonly Role[]) {
    if (existing.some((r) => r.name === name)) return;
    const operations = await call(
      "POST /projects/{project_id}/branches/{branch_id}/roles",
      // The response carries the new password: it is dropped here; the URIs come from connection_uri.
      async () => (await api.createProjectBranchRole(projectId, branchId, { role: { name } })).data.operations,
      {
        recover: async () =>
          (await listRoles(projectId, branchId)).some((r) => r.name === name) ? ([] as Operation[]) : undefined,
      },
    );
    await waitForOperations(projectId, operations);
  }

  async function ensureDatabase(
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
    const operations = await call(
      "POST /projects/{project_id}/branches/{branch_id}/databases",
      async () =>
        (
          await api.createProjectBranchDatabase(projectId, branchId, {
            database: { name: names.database, owner_name: names.ownerRole },
          })
        ).data.operations,
      { recover: async () => (check(await listDatabases(projectId, branchId)) ? ([] as Operation[]) : undefined) },
    );
    await waitForOperations(projectId, operations);
  }

  async function connectionUri(projectId: string, branchId: string, database: string, role: string, pooled: boolean) {
    return call(
      "GET /projects/{project_id}/connection_uri",
      async () =>
        (
          await api.getConnectionUri({
            projectId,
            branch_id: branchId,
            database_name: database,
            role_name: role,
            pooled,
          })
        ).data.uri,
    );
  }

  return {
    kind: "neon",

    regions: () => Object.keys(regions),

    async provision(request, previous) {
      const names = neonNames(request.slug);
      if (!Object.hasOwn(regions, request.region)) {
        throw new ProvisionerError("region_unsupported", `no Neon project is configured for region ${request.region}`);
      }
      const projectId = projectFor(request, previous);
      const template = regions[request.region]?.templateBranchId;
      const progress = async (ref: ResourceRef) => {
        await options.onProgress?.(request, ref);
      };

      // 1. The branch (with its read_write endpoint).
      let roles: readonly Role[] | undefined;
      let databases: readonly Database[] | undefined;
      let branch = await findBranch(projectId, names.branch, previous?.branchId);
      if (!branch) {
        const created = await createBranch(projectId, names.branch, template);
        branch = created.branch;
        roles = created.roles;
        databases = created.databases;
        await waitForOperations(projectId, created.operations);
      }
      const ref: Record<string, string> = {
        region: request.region,
        projectId,
        branchId: branch.id,
        branchName: names.branch,
      };
      await progress({ ...ref });

      // 2. The roles.
      roles ??= await listRoles(projectId, branch.id);
      await ensureRole(projectId, branch.id, names.ownerRole, roles);
      await ensureRole(projectId, branch.id, names.appRole, roles);
      ref.ownerRole = names.ownerRole;
      ref.appRole = names.appRole;
      await progress({ ...ref });

      // 3. The database, owned by the owner role.
      databases ??= await listDatabases(projectId, branch.id);
      await ensureDatabase(projectId, branch.id, names, databases);
      ref.databaseName = names.database;
      await progress({ ...ref });

      // 4. Connection strings: pooled for app traffic, direct for migrations.
      const connection = await connectionUri(projectId, branch.id, names.database, names.appRole, true);
      const migration = await connectionUri(projectId, branch.id, names.database, names.ownerRole, false);
      return { ref, connectionUri: connection, migrationUri: migration } satisfies ProvisionResult;
    },

    async deprovision(request, ref) {
      const names = neonNames(request.slug);
      const projectId = projectFor(request, ref);
      const branch = await findBranch(projectId, names.branch, ref.branchId);
      if (!branch) return;
      if (branch.default) {
        throw new ProvisionerError(
          "invalid_input",
          `refusing to delete Neon branch ${branch.id}: it is the default branch`,
        );
      }
      const operations = await call(
        "DELETE /projects/{project_id}/branches/{branch_id}",
        // 200 with operations, or 204 when the branch is already gone.
        async () =>
          (await api.deleteProjectBranch({ projectId, branchId: branch.id })).data?.operations ?? ([] as Operation[]),
        {
          notFound: () => [] as Operation[],
          recover: async () =>
            (await getBranch(projectId, branch.id, names.branch)) ? undefined : ([] as Operation[]),
        },
      );
      await waitForOperations(projectId, operations);
    },

    async exists(request, ref) {
      const names = neonNames(request.slug);
      const projectId = projectFor(request, ref);
      return (await findBranch(projectId, names.branch, ref.branchId)) !== undefined;
    },
  };
}
