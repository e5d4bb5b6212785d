/**
 * The export side of a tenant's delete (see DeleteSteps in tenants/lifecycle.ts): the final
 * export when asked for, after waiting out the edge's caches, and the purge of every other export.
 */
import { EDGE_STALE_MS } from "../../shared/edge-cache.ts";
import type { DeleteSteps } from "../tenants/lifecycle.ts";
import { purgeTenantExports } from "./purge.ts";
import { type ExportDeps, finalExport } from "./service.ts";

export interface DeleteExportDeps extends ExportDeps {
  /** How long to wait, once the tenant is off the edge, before the final export (default EDGE_STALE_MS). */
  readonly settleMs?: number | undefined;
}

export function exportDeleteSteps(deps: DeleteExportDeps, slug: string, wantFinal: boolean): DeleteSteps {
  const settleMs = deps.settleMs ?? EDGE_STALE_MS;
  return {
    settle: () => new Promise((resolve) => setTimeout(resolve, settleMs)),
    finalExport: wantFinal ? async () => (await finalExport(deps, slug)).id : undefined,
    purgeExports: (tenantId, keep) => purgeTenantExports(deps, tenantId, slug, keep),
  };
}
