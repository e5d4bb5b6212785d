/**
 * The audit log: every admin action is recorded with its actor, target and outcome, whether it
 * succeeded or not, and only safe details (codes and counts, never secrets). `audited` wraps an
 * action so no caller can forget the record; `auditEntries` reads the log back for the admin API.
 */
import { desc, eq } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { auditLog } from "../schema.ts";
import type { ControlDeps } from "./deps.ts";

/** Writes one audit record; `audited` is the usual way in. */
export async function audit(
  deps: ControlDeps,
  action: string,
  target: string,
  outcome: "ok" | "error",
  detail: Record<string, unknown> = {},
): Promise<void> {
  await deps.db
    .insert(auditLog)
    .values({ actor: deps.actor, action, target, outcome, detail, requestId: deps.requestId ?? null });
}

/** Runs an admin action and records it in the audit log whatever the outcome. */
export async function audited<T>(
  deps: ControlDeps,
  action: string,
  target: string,
  work: () => Promise<T>,
  detail?: (result: T) => Record<string, unknown>,
): Promise<T> {
  try {
    const result = await work();
    await audit(deps, action, target, "ok", detail ? detail(result) : {});
    return result;
  } catch (error) {
    const code = error instanceof AppError ? error.code : "internal_error";
    await audit(deps, action, target, "error", { code }).catch(() => undefined);
    throw error;
  }
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string;
  readonly detail: Record<string, unknown> | null;
}

export async function auditEntries(
  deps: ControlDeps,
  options: { target?: string | undefined; limit: number },
): Promise<AuditEntry[]> {
  return deps.db
    .select({
      id: auditLog.id,
      at: auditLog.at,
      actor: auditLog.actor,
      action: auditLog.action,
      target: auditLog.target,
      outcome: auditLog.outcome,
      detail: auditLog.detail,
    })
    .from(auditLog)
    .where(options.target ? eq(auditLog.target, options.target) : undefined)
    .orderBy(desc(auditLog.id))
    .limit(options.limit);
}
