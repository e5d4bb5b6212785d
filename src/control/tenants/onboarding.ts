/**
 * Onboarding: a resumable state machine, persisted after every step:
 *   provisioning ──provision──▶ migrating ──migrate──▶ active (projected to KV)
 *         └──────────── any failure ──▶ failed (failed_step, reason) ── retry ──▶ resumes there
 * The provisioner reuses what its saved `resource_ref` (or the tenant's deterministic names) points
 * at, so a retry never creates a second database; migrations are idempotent by their ledger. A run
 * holds the tenant's lease, so two runs never work on one tenant at once.
 */
import { neon } from "@neondatabase/serverless";
import { and, eq, sql } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { migrateDatabase } from "../../shared/migrations.ts";
import { redactSecrets } from "../../shared/redact.ts";
import type { ProvisionRequest } from "../provisioners/types.ts";
import { type TenantState, tenants } from "../schema.ts";
import { audited } from "./audit.ts";
import { type ControlDeps, provisionerFor } from "./deps.ts";
import { projectTenant } from "./projection.ts";
import { domainsOf, loadBySlug, onboardingLeaseFree, type TenantView, updateTenant, view } from "./rows.ts";
import { migrationConnection, sealConnections } from "./secrets.ts";

/** How long one onboarding run may hold a tenant before another may take over (a crashed run's lease lapses). */
const ONBOARDING_LEASE = "5 minutes";

/**
 * The states onboarding moves a tenant out of. Its every write is guarded by them (updateTenant's
 * `from`): once a delete has marked the tenant `deleting`, no onboarding step brings it back.
 */
const ONBOARDING: readonly TenantState[] = ["provisioning", "migrating", "failed"];

/** A failure reason safe to store and show: error class and code, never driver text with secrets. */
function safeReason(error: unknown): string {
  if (error instanceof AppError) return `${error.code}: ${error.detail ?? ""}`.trim();
  const e = error as { name?: string; code?: string; message?: string };
  const code = typeof e?.code === "string" ? ` (${e.code})` : "";
  if (e?.name === "ProvisionerError") return `provisioner${code}: ${redactSecrets(String(e.message))}`;
  return `${e?.name ?? "Error"}${code}`;
}

/**
 * Runs (or resumes) onboarding until the tenant is active; on failure records where and why. One
 * run at a time per tenant: a run takes the tenant's lease first (an atomic update in the control
 * database) and a second run meanwhile is refused with 409, so two retries never provision twice
 * or leave the tenant with the other run's credentials. A run releases only its own lease.
 */
export async function onboard(deps: ControlDeps, id: string): Promise<TenantView> {
  const leased = await deps.db
    .update(tenants)
    .set({ onboardingLeaseUntil: sql`now() + ${ONBOARDING_LEASE}::interval` })
    .where(and(eq(tenants.id, id), onboardingLeaseFree()))
    .returning({ until: tenants.onboardingLeaseUntil });
  const lease = leased[0]?.until;
  if (!lease) {
    const [exists] = await deps.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, id));
    if (!exists) throw new AppError(404, "not_found", "No such tenant.");
    throw new AppError(409, "conflict", "This tenant is being onboarded right now; look again when that has finished.");
  }
  try {
    return await onboardSteps(deps, id);
  } finally {
    // Only this run's lease: a run that outlived it may find another run holding the tenant now.
    // `lease` is Postgres's own text of the value (microseconds included), so the compare is exact.
    await deps.db
      .update(tenants)
      .set({ onboardingLeaseUntil: null })
      .where(and(eq(tenants.id, id), eq(tenants.onboardingLeaseUntil, lease)))
      .catch(() => undefined);
  }
}

async function onboardSteps(deps: ControlDeps, id: string): Promise<TenantView> {
  for (let guard = 0; guard < 6; guard++) {
    const [row] = await deps.db.select().from(tenants).where(eq(tenants.id, id));
    if (!row) throw new AppError(404, "not_found", "No such tenant.");
    const request: ProvisionRequest = { tenantId: row.id, slug: row.slug, region: row.region };
    const step = row.status === "failed" ? ((row.failedStep as TenantState | null) ?? "provisioning") : row.status;
    try {
      switch (step) {
        case "provisioning": {
          const provisioner = provisionerFor(deps, row.provisioner);
          const result = await provisioner.provision(request, row.resourceRef ?? undefined);
          const sealed = await sealConnections(deps, id, result.connectionUri, result.migrationUri);
          const values = { status: "migrating", resourceRef: { ...result.ref }, ...sealed } as const;
          await updateTenant(deps, id, { ...values, failedStep: null, failureReason: null }, ONBOARDING).catch(
            async (error: unknown) => {
              // Deleted while provisioning (its lease had lapsed): what was just made is nobody's.
              if (error instanceof AppError && error.code === "invalid_state")
                await provisioner.deprovision(request, result.ref).catch(() => undefined);
              throw error;
            },
          );
          await deps.afterStep?.("provisioned", id);
          break;
        }
        case "migrating": {
          const uri = await migrationConnection(deps, row);
          const migrated = await migrateDatabase(neon(uri), deps.tenantBundle);
          // Active only once migrated: the edge never sees a tenant whose schema is not there.
          const active = await updateTenant(
            deps,
            id,
            { status: "active", schemaVersion: migrated.version, failedStep: null, failureReason: null },
            ["migrating", "failed"],
          );
          await deps.afterStep?.("migrated", id);
          await projectTenant(deps, active);
          await deps.afterStep?.("projected", id);
          return view(active, await domainsOf(deps, id));
        }
        case "active":
        case "suspended": {
          await projectTenant(deps, row);
          return view(row, await domainsOf(deps, id));
        }
        default:
          throw new AppError(409, "invalid_state", `A ${row.status} tenant cannot be onboarded.`);
      }
    } catch (error) {
      if (error instanceof AppError && (error.code === "invalid_state" || error.code === "not_found")) throw error;
      if ((error as { name?: string }).name === "OnboardingInterrupted") throw error;
      const failedStep = step === "provisioning" || step === "migrating" ? step : "migrating";
      const failed = { status: "failed", failedStep, failureReason: safeReason(error) } as const;
      await updateTenant(deps, id, failed, ONBOARDING).catch(() => undefined);
      throw new AppError(
        502,
        "onboarding_failed",
        `Onboarding stopped while ${failedStep}; retry it to continue where it stopped.`,
        {
          cause: error,
        },
      );
    }
  }
  throw new AppError(500, "internal_error", "Onboarding did not settle.");
}

/** Resumes an interrupted or failed onboarding where it stopped. */
export async function retryOnboarding(deps: ControlDeps, slug: string): Promise<TenantView> {
  const row = await loadBySlug(deps, slug);
  return audited(
    deps,
    "tenant.retry",
    slug,
    () => onboard(deps, row.id),
    (t) => ({ status: t.status }),
  );
}
