/**
 * The records the fake Neon API hands out, shaped as in `@neondatabase/api-client`'s OpenAPI spec
 * (`public-v2-for-users.gen.yaml`): projects, branches, endpoints, operations, roles and
 * databases, plus the connection strings Neon builds from them. Builders only: they make one fresh
 * record each (with Neon-like random ids and passwords) and know nothing of the store that keeps
 * them, so `state.ts` can stay about the rules and the responses can stay about the wire.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
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

/** A role as the store keeps it: Neon stores passwords (`store_passwords: true`) and reveals them on request. */
export type RoleWithPassword = Role & { password: string };

const ADJECTIVES = ["aged", "bitter", "cool", "dark", "floral", "little", "noisy", "raspy", "shiny", "soft", "sweet"];
const NOUNS = ["salad", "sound", "darkness", "snowflake", "king", "smoke", "sunset", "hill", "wind", "pine", "breeze"];
const pick = (list: readonly string[]) => list[randomInt(list.length)] ?? "x";

/** Neon's ids read like `br-cool-sunset-123456`; tests only rely on the prefix. */
export const friendlyId = (prefix: string) =>
  `${prefix}-${pick(ADJECTIVES)}-${pick(NOUNS)}-${String(randomInt(1_000_000)).padStart(6, "0")}`;
export const newPassword = () => randomBytes(9).toString("base64url").replace(/[-_]/g, "x");
export const now = () => new Date().toISOString();

const regionHost = (regionId: string) => `${regionId.replace(/^aws-/, "")}.aws.neon.tech`;

export function projectRecord(id: string, regionId: string, at: string): Project {
  return {
    data_storage_bytes_hour: 0,
    data_transfer_bytes: 0,
    written_data_bytes: 0,
    compute_time_seconds: 0,
    active_time_seconds: 0,
    cpu_used_sec: 0,
    id,
    platform_id: "aws",
    region_id: regionId,
    name: id,
    provisioner: "k8s-neonvm",
    pg_version: 17,
    proxy_host: regionHost(regionId),
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
}

/** A branch starts `init` (pending `ready`) until its `create_timeline` operation finishes; the default one is born ready. */
export function branchRecord(
  projectId: string,
  id: string,
  name: string,
  parentId: string | undefined,
  isDefault: boolean,
): Branch {
  const at = now();
  return {
    id,
    project_id: projectId,
    ...(parentId ? { parent_id: parentId, parent_lsn: "0/1DE2850", parent_timestamp: at } : {}),
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
}

/** A read_write compute that starts `init` (pending `active`) until its `start_compute` operation finishes. */
export function endpointRecord(project: Project, branchId: string): Endpoint {
  const id = friendlyId("ep");
  const at = now();
  return {
    host: `${id}.${regionHost(project.region_id)}`,
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
    proxy_host: regionHost(project.region_id),
    suspend_timeout_seconds: 0,
    provisioner: "k8s-neonvm",
  };
}

/** Every mutating call returns operations like this one: `running` until polled to an end. */
export function operationRecord(
  projectId: string,
  branchId: string,
  endpointId: string | undefined,
  action: string,
): Operation {
  const at = now();
  return {
    id: randomUUID(),
    project_id: projectId,
    branch_id: branchId,
    ...(endpointId ? { endpoint_id: endpointId } : {}),
    action: action as OperationAction,
    status: "running" as OperationStatus,
    failures_count: 0,
    created_at: at,
    updated_at: at,
    total_duration_ms: 0,
  };
}

export function roleRecord(branchId: string, name: string, at: string): RoleWithPassword {
  return { branch_id: branchId, name, password: newPassword(), protected: false, created_at: at, updated_at: at };
}

export function databaseRecord(id: number, branchId: string, name: string, ownerName: string, at: string): Database {
  return { id, branch_id: branchId, name, owner_name: ownerName, created_at: at, updated_at: at };
}

/** Responses list roles without their passwords; only the connection endpoints reveal them. */
export const stripPassword = ({ password: _omitted, ...role }: Role): Role => role;

/** Neon's pooled host is the endpoint host with `-pooler` after the endpoint id. */
export function poolerHost(endpoint: Endpoint): string {
  const [first, ...rest] = endpoint.host.split(".");
  return [`${first}-pooler`, ...rest].join(".");
}

export function placeholderUri(endpoint: Endpoint, role: Role, database: string, pooled: boolean): string {
  const host = pooled ? poolerHost(endpoint) : endpoint.host;
  return `postgresql://${role.name}:${role.password ?? ""}@${host}/${database}?sslmode=require`;
}
