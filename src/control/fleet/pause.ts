/**
 * Write pauses: a migration flagged `pause-writes` in its bundle entry (a `-- tenantry:pause-writes`
 * line in its file) makes the tenant `migrating` at the edge, 503 `tenant_migrating` with
 * Retry-After, for as long as that migration (or its undo) runs on it, and only then. The pause is
 * the tenant row's `writes_paused_by` (the run's id), projected to KV like any other change, so
 * reconcile keeps it too; it is released when the work ends, failed or not.
 */
import { and, eq } from "drizzle-orm";
import type { Migration, MigrationBundle } from "../../shared/migrations.ts";
import { tenants } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";
import { projectTenant } from "../tenants/projection.ts";
import type { TenantRow } from "../tenants/rows.ts";
import type { FleetDeps } from "./dispatch.ts";

export interface RunShape {
  readonly kind: "apply" | "rollback";
  readonly target: string | null;
  readonly steps: number | null;
  readonly dryRun: boolean;
}

/**
 * The migrations a run applies or undoes on a tenant recorded at version `from`: for an apply,
 * those after `from` up to the target; for a rollback, the `steps` ending at `from`. Pure.
 */
export function migrationsOfRun(bundle: MigrationBundle, run: RunShape, from: string | null): Migration[] {
  const at = from === null ? -1 : bundle.findIndex((m) => m.name === from);
  if (run.kind === "rollback") return at < 0 ? [] : bundle.slice(Math.max(0, at - (run.steps ?? 1) + 1), at + 1);
  const end = run.target === null ? bundle.length : bundle.findIndex((m) => m.name === run.target) + 1;
  return bundle.slice(at + 1, end);
}

/** Whether this run pauses the tenant's writes: a real run (not a dry run) touching a flagged migration. */
export const pausesWrites = (bundle: MigrationBundle, run: RunShape, from: string | null): boolean =>
  !run.dryRun && migrationsOfRun(bundle, run, from).some((m) => m.pauseWrites === true);

/** Releases every tenant still paused by `runId` (a cancelled run); returns how many. */
export async function releasePauses(deps: ControlDeps, runId: string): Promise<number> {
  const released = await deps.db
    .update(tenants)
    .set({ writesPausedBy: null, updatedAt: new Date().toISOString() })
    .where(eq(tenants.writesPausedBy, runId))
    .returning();
  for (const row of released) await projectTenant(deps, row);
  return released.length;
}

/** Runs `work` with the tenant marked `migrating` at the edge, released afterwards whatever happens. */
export async function withWritesPaused<T>(
  deps: FleetDeps,
  tenant: TenantRow,
  runId: string,
  work: () => Promise<T>,
): Promise<T> {
  const [paused] = await deps.db
    .update(tenants)
    .set({ writesPausedBy: runId, updatedAt: new Date().toISOString() })
    .where(and(eq(tenants.id, tenant.id), eq(tenants.status, "active")))
    .returning();
  try {
    if (paused) await projectTenant(deps, paused);
    return await work();
  } finally {
    const [released] = await deps.db
      .update(tenants)
      .set({ writesPausedBy: null, updatedAt: new Date().toISOString() })
      .where(and(eq(tenants.id, tenant.id), eq(tenants.writesPausedBy, runId)))
      .returning();
    if (released) await projectTenant(deps, released);
  }
}
