/**
 * The guard of a destructive rollback: before a tenant's down files drop or truncate anything
 * (destructive-sql.ts), a schema-and-data export of the tenant is taken with the export engine
 * and stored like any export (kind `pre_rollback`, kept past retention). When no export can be
 * taken the tenant's rollback is refused, with nothing undone, unless the run was started with
 * `force`. The export is of the whole tenant, so restoring it (psql) brings back every dropped
 * object with its rows.
 */
import { type DropTarget, describeDrop } from "../../shared/destructive-sql.ts";

/** Takes an export of the tenant and returns its id; throws when it could not be completed. */
export type ExportBeforeDrop = (tenant: { readonly id: string; readonly slug: string }) => Promise<string>;

export class RollbackRefusedError extends Error {
  override readonly name = "RollbackRefusedError";
  constructor(
    readonly drops: readonly DropTarget[],
    reason: string,
  ) {
    super(
      `rollback refused: it would drop ${drops.map(describeDrop).join(", ")}, and ${reason}; nothing was undone (take an export, or rerun with --force)`,
    );
  }
}

export interface DropGuard {
  /** For rollbackMigrations' `beforeDrop`: undefined when forced (no export, no refusal). */
  readonly beforeDrop: ((drops: readonly DropTarget[]) => Promise<void>) | undefined;
  /** The export taken, once beforeDrop has run. */
  readonly exportId: () => string | undefined;
}

export function dropGuard(
  tenant: { readonly id: string; readonly slug: string },
  options: { readonly force: boolean; readonly exportBeforeDrop?: ExportBeforeDrop | undefined },
): DropGuard {
  let exportId: string | undefined;
  if (options.force) return { beforeDrop: undefined, exportId: () => undefined };
  return {
    beforeDrop: async (drops) => {
      if (!options.exportBeforeDrop) throw new RollbackRefusedError(drops, "no export can be taken here");
      try {
        exportId = await options.exportBeforeDrop(tenant);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new RollbackRefusedError(drops, `the export before it failed (${why.slice(0, 200)})`);
      }
    },
    exportId: () => exportId,
  };
}
