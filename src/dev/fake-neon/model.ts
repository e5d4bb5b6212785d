/**
 * The shape of the fake Neon API's in-memory store, and how its rules fail. Projects hold
 * branches and operations; a branch holds its endpoints, roles (with passwords, as Neon stores
 * them) and databases. A broken rule is a `FakeNeonStateError` with a `reason`, never an HTTP
 * status: the Hono app (`errors.ts`) maps each reason to the status the real API answers with,
 * so the store can be used and tested without HTTP.
 */
import type { Branch, Database, Endpoint, Operation, Project, Role } from "@neondatabase/api-client";
import type { RoleWithPassword } from "./records.ts";

export interface FakeBranch {
  branch: Branch;
  endpoints: Endpoint[];
  roles: Map<string, RoleWithPassword>;
  databases: Map<string, Database>;
}

export interface FakeOperation {
  operation: Operation;
  /** Polls left before the operation settles. */
  pollsLeft: number;
  /** Settle as `failed` instead of `finished`. */
  fail: boolean;
}

export interface FakeProject {
  project: Project;
  branches: Map<string, FakeBranch>;
  operations: Map<string, FakeOperation>;
}

export interface FakeNeonState {
  readonly projects: Map<string, FakeProject>;
  /** Polls of an operation before it settles (at least 1). */
  readonly operationPolls: number;
  /** The next operation started settles as `failed` (set by `failOperationNext`). */
  failNextOperation: boolean;
  /** Database ids are numbers, unique across the whole fake. */
  nextDatabaseId: number;
}

/** A copy of one branch as tests see it, roles with their passwords. */
export interface FakeBranchState {
  readonly branch: Branch;
  readonly endpoints: readonly Endpoint[];
  /** Roles with their passwords. */
  readonly roles: readonly Role[];
  readonly databases: readonly Database[];
}

/** Why Neon refuses a request: bad input (400), missing (404), name taken (409), branch busy (423). */
export type FakeNeonFailure = "invalid" | "not_found" | "conflict" | "locked";

export class FakeNeonStateError extends Error {
  constructor(
    readonly reason: FakeNeonFailure,
    message: string,
  ) {
    super(message);
  }
}
