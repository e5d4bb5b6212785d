/**
 * Neon's asynchronous work, as the fake models it: every mutating call starts operations that are
 * `running`, finish (or, when a test asked for it, fail) after a set number of polls of
 * `GET /projects/{project_id}/operations/{operation_id}`, and bring the branch or endpoint they
 * act on to its pending state when they finish. While a branch has unfinished operations, Neon
 * refuses new work on it (423 Locked); `assertUnlocked` is that rule. Kept apart from the
 * branch/role/database rules because it is the one place time (polls) enters the model.
 */
import type { EndpointState, Operation, OperationStatus } from "@neondatabase/api-client";
import { type FakeNeonState, FakeNeonStateError, type FakeOperation, type FakeProject } from "./model.ts";
import { now, operationRecord } from "./records.ts";

export const isOpen = (op: Operation) => op.status === "running" || op.status === "scheduling";

/** Starts an operation; it takes the state's pending `failOperationNext` with it. Returns a copy. */
export function startOperation(
  state: FakeNeonState,
  project: FakeProject,
  branchId: string,
  endpointId: string | undefined,
  action: string,
): Operation {
  const operation = operationRecord(project.project.id, branchId, endpointId, action);
  project.operations.set(operation.id, { operation, pollsLeft: state.operationPolls, fail: state.failNextOperation });
  state.failNextOperation = false;
  return structuredClone(operation);
}

/** Neon refuses to start work on a branch while earlier operations on it are still running. */
export function assertUnlocked(project: FakeProject, branchId: string): void {
  for (const { operation } of project.operations.values()) {
    if (operation.branch_id === branchId && isOpen(operation)) {
      throw new FakeNeonStateError(
        "locked",
        "project already has running conflicting operations, scheduling of new ones is prohibited",
      );
    }
  }
}

/** One poll: an open operation counts down and settles on its last poll. Returns a copy. */
export function pollOperation(project: FakeProject, operationId: string): Operation {
  const entry = project.operations.get(operationId);
  if (!entry) throw new FakeNeonStateError("not_found", `operation ${operationId} not found`);
  if (isOpen(entry.operation)) {
    entry.pollsLeft--;
    if (entry.pollsLeft <= 0) settle(project, entry);
  }
  return structuredClone(entry.operation);
}

function settle(project: FakeProject, entry: FakeOperation): void {
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
