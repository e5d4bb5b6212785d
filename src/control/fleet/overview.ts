/**
 * Read-only fleet overviews the operator console shows next to `fleetStatus` and `runProgress`
 * (runs.ts): tenants counted by status and region, mapped domains by state, the latest runs, and a run's
 * progress per phase (canary, waves). Reads only: every rule about runs stays in runs.ts.
 */
import { count, desc, eq } from "drizzle-orm";
import { type DomainState, domains, migrationRuns, type RunTenantState, runTenants, tenants } from "../schema.ts";
import type { ControlDeps } from "../tenants/deps.ts";

export interface TenantCensus {
  /** Tenants per status, then per region within it (deleted tenants included: they keep their audit). */
  readonly byStatus: Record<string, Record<string, number>>;
  readonly total: number;
  /** Mapped domains per state (active, pending, moved, blocked, deleted, removing); absent states are 0. */
  readonly domains: Partial<Record<DomainState, number>>;
}

export async function tenantCensus(deps: ControlDeps): Promise<TenantCensus> {
  const rows = await deps.db
    .select({ status: tenants.status, region: tenants.region, n: count() })
    .from(tenants)
    .groupBy(tenants.status, tenants.region);
  const byStatus: Record<string, Record<string, number>> = {};
  let total = 0;
  for (const row of rows) {
    const regions = byStatus[row.status] ?? {};
    regions[row.region] = Number(row.n);
    byStatus[row.status] = regions;
    total += Number(row.n);
  }
  const mapped = await deps.db.select({ status: domains.status, n: count() }).from(domains).groupBy(domains.status);
  return { byStatus, total, domains: Object.fromEntries(mapped.map((row) => [row.status, Number(row.n)])) };
}

export interface RunSummary {
  readonly id: string;
  readonly kind: string;
  readonly status: string;
  readonly target: string | null;
  readonly dryRun: boolean;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export async function recentRuns(deps: ControlDeps, limit = 10): Promise<RunSummary[]> {
  return deps.db
    .select({
      id: migrationRuns.id,
      kind: migrationRuns.kind,
      status: migrationRuns.status,
      target: migrationRuns.target,
      dryRun: migrationRuns.dryRun,
      createdBy: migrationRuns.createdBy,
      createdAt: migrationRuns.createdAt,
      finishedAt: migrationRuns.finishedAt,
    })
    .from(migrationRuns)
    .orderBy(desc(migrationRuns.createdAt))
    .limit(limit);
}

/** One phase of a run (0 is the canary): its tenants per state. */
export interface PhaseProgress {
  readonly phase: number;
  readonly total: number;
  readonly counts: Partial<Record<RunTenantState, number>>;
}

export async function phaseProgress(deps: ControlDeps, runId: string): Promise<PhaseProgress[]> {
  const rows = await deps.db
    .select({ phase: runTenants.phase, status: runTenants.status, n: count() })
    .from(runTenants)
    .where(eq(runTenants.runId, runId))
    .groupBy(runTenants.phase, runTenants.status);
  const phases = new Map<number, { phase: number; total: number; counts: Partial<Record<RunTenantState, number>> }>();
  for (const row of rows) {
    const entry = phases.get(row.phase) ?? { phase: row.phase, total: 0, counts: {} };
    entry.counts[row.status] = Number(row.n);
    entry.total += Number(row.n);
    phases.set(row.phase, entry);
  }
  return [...phases.values()].sort((a, b) => a.phase - b.phase);
}
