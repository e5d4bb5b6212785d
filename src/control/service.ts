/**
 * The control plane: tenants, domains, onboarding, suspension, deletion and the KV projection.
 * Runtime-agnostic (the Worker's admin API and Node tooling both call it): the control database is
 * reached through Neon's HTTP driver, KV through a small interface, provisioners through theirs.
 *
 * Onboarding is a resumable state machine, persisted after every step:
 *   provisioning ──provision──▶ migrating ──migrate──▶ active (projected to KV)
 *         └──────────── any failure ──▶ failed (failed_step, reason) ── retry ──▶ resumes there
 * The provisioner reuses what its saved `resource_ref` (or the tenant's deterministic names) points
 * at, so a retry never creates a second database; migrations are idempotent by their ledger.
 */
import { neon } from "@neondatabase/serverless";
import { and, asc, desc, eq, gt, inArray, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import { drizzle, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import { decryptSecret, encryptSecret, type KeyRing, parseKeyRing, tenantAad } from "../shared/crypto/secrets.ts";
import { AppError } from "../shared/errors.ts";
import { isValidSlug, normalizeHost } from "../shared/host.ts";
import { type MigrationBundle, migrateDatabase } from "../shared/migrations.ts";
import { hostKey, parseTenantRecord, slugKey, type TenantRecord } from "../shared/tenant-record.ts";
import type { Provisioner, ProvisionerKind, ProvisionRequest } from "./provisioners/types.ts";
import * as schema from "./schema.ts";
import { auditLog, domains, type TenantState, tenants } from "./schema.ts";

export type ControlDb = NeonHttpDatabase<typeof schema>;

export function controlDb(url: string): ControlDb {
  return drizzle({ client: neon(url), schema });
}

/** The KV operations the projection needs (a Workers KVNamespace satisfies it). */
export interface KvStore {
  get(key: string, type: "text"): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: { prefix: string; cursor?: string | undefined }): Promise<{
    keys: { name: string }[];
    list_complete: boolean;
    cursor?: string | undefined;
  }>;
}

export type OnboardingStep = "created" | "provisioned" | "migrated" | "projected";

export interface ControlDeps {
  readonly db: ControlDb;
  readonly kv: KvStore;
  /** `DB_ENCRYPTION_KEYS` key ring (first key encrypts). */
  readonly encryptionKeys: string;
  readonly provisioners: Partial<Record<ProvisionerKind, Provisioner>>;
  readonly defaultProvisioner: ProvisionerKind;
  /** The tenant schema every tenant database is migrated to. */
  readonly tenantBundle: MigrationBundle;
  /** Hosts that may never be a tenant domain (the admin host). */
  readonly reservedHosts: readonly string[];
  /** Who is acting (token subject), for the audit log. */
  readonly actor: string;
  readonly requestId?: string | undefined;
  /** Called after each committed step (tests use it to interrupt onboarding). */
  readonly afterStep?: ((step: OnboardingStep, tenantId: string) => Promise<void> | void) | undefined;
  /** Called after KV records change (the Worker purges its isolate cache). */
  readonly onProjected?: (() => void) | undefined;
}

export type TenantRow = typeof tenants.$inferSelect;

/** What the admin API shows of a tenant: never a secret. */
export interface TenantView {
  readonly id: string;
  readonly slug: string;
  readonly status: TenantState;
  readonly region: string;
  readonly plan: string;
  readonly provisioner: string;
  readonly schemaVersion: string | null;
  readonly domains: string[];
  readonly failedStep: string | null;
  readonly failureReason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly deletedAt: string | null;
}

const rings = new Map<string, KeyRing>();
/** The parsed key ring of `DB_ENCRYPTION_KEYS`, parsed once per value. */
export function ring(keys: string): KeyRing {
  let found = rings.get(keys);
  if (!found) {
    found = parseKeyRing(keys);
    rings.set(keys, found);
  }
  return found;
}

export const migrationAad = (tenantId: string) => tenantAad(`migrate:${tenantId}`);

async function decryptOrFail(keys: string, ciphertext: string | null, aad: string, what: string): Promise<string> {
  if (!ciphertext) throw new AppError(409, "invalid_state", `The tenant has no ${what} yet.`);
  const result = await decryptSecret(ring(keys), ciphertext, aad);
  if (!result.ok) throw new AppError(500, "internal_error", `The tenant's ${what} could not be decrypted.`);
  return result.plaintext;
}

function newTenantId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `ten_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const isUniqueViolation = (error: unknown, constraint?: string): boolean => {
  let current = error as { code?: unknown; constraint?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 3; depth++) {
    if (current.code === "23505") return constraint === undefined || current.constraint === constraint;
    current = current.cause as typeof current;
  }
  return false;
};

/** A failure reason safe to store and show: error class and code, never driver text with secrets. */
function safeReason(error: unknown): string {
  if (error instanceof AppError) return `${error.code}: ${error.detail ?? ""}`.trim();
  const e = error as { name?: string; code?: string; message?: string };
  const code = typeof e?.code === "string" ? ` (${e.code})` : "";
  if (e?.name === "ProvisionerError")
    return `provisioner${code}: ${String(e.message).replace(/postgres(ql)?:\/\/\S+/g, "[redacted]")}`;
  return `${e?.name ?? "Error"}${code}`;
}

export function normaliseDomain(input: string, reserved: readonly string[]): string {
  const parsed = normalizeHost(input);
  if (!parsed.ok) {
    throw new AppError(422, "validation_failed", "Invalid domain.", {
      extras: { errors: [{ path: "domain", message: `not a valid host name (${parsed.reason})` }] },
    });
  }
  if (reserved.includes(parsed.host)) {
    throw new AppError(422, "validation_failed", "This host is reserved.", {
      extras: { errors: [{ path: "domain", message: "reserved host" }] },
    });
  }
  return parsed.host;
}

async function audit(
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

async function loadBySlug(deps: ControlDeps, slug: string): Promise<TenantRow> {
  const [row] = await deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  if (!row) throw new AppError(404, "not_found", "No such tenant.");
  return row;
}

async function domainsOf(deps: ControlDeps, tenantId: string): Promise<string[]> {
  const rows = await deps.db
    .select({ hostname: domains.hostname })
    .from(domains)
    .where(eq(domains.tenantId, tenantId))
    .orderBy(asc(domains.hostname));
  return rows.map((row) => row.hostname);
}

function view(row: TenantRow, hostnames: readonly string[]): TenantView {
  return {
    id: row.id,
    slug: row.slug,
    status: row.status,
    region: row.region,
    plan: row.plan,
    provisioner: row.provisioner,
    schemaVersion: row.schemaVersion,
    domains: [...hostnames],
    failedStep: row.failedStep,
    failureReason: row.failureReason,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    deletedAt: row.deletedAt,
  };
}

async function update(deps: ControlDeps, id: string, values: Partial<typeof tenants.$inferInsert>): Promise<TenantRow> {
  const [row] = await deps.db
    .update(tenants)
    .set({ ...values, updatedAt: new Date().toISOString() })
    .where(eq(tenants.id, id))
    .returning();
  if (!row) throw new AppError(404, "not_found", "No such tenant.");
  return row;
}

function provisionerFor(deps: ControlDeps, kind: ProvisionerKind): Provisioner {
  const provisioner = deps.provisioners[kind];
  if (!provisioner) throw new AppError(422, "provisioner_unavailable", `The ${kind} provisioner is not configured.`);
  return provisioner;
}

/** Statuses the edge serves (or gates) and so has KV records for. */
const PROJECTED: readonly TenantState[] = ["active", "suspended"];

/** The KV records a tenant should have right now: empty unless it is active or suspended. */
export function desiredRecords(row: TenantRow, hostnames: readonly string[]): Map<string, TenantRecord> {
  const records = new Map<string, TenantRecord>();
  if (!PROJECTED.includes(row.status) || !row.dbSecret) return records;
  const record: TenantRecord = {
    v: 1,
    id: row.id,
    slug: row.slug,
    status: row.status === "suspended" ? "suspended" : "active",
    region: row.region,
    schemaVersion: row.schemaVersion,
    db: row.dbSecret,
    updatedAt: row.updatedAt,
  };
  records.set(slugKey(row.slug), record);
  for (const host of hostnames) records.set(hostKey(host), record);
  return records;
}

/** Writes (or removes) every KV record of one tenant, from the committed control-plane state. */
export async function projectTenant(
  deps: ControlDeps,
  row: TenantRow,
  removedHosts: readonly string[] = [],
): Promise<void> {
  const hostnames = await domainsOf(deps, row.id);
  const desired = desiredRecords(row, hostnames);
  for (const [key, record] of desired) await deps.kv.put(key, JSON.stringify(record));
  const stale = [slugKey(row.slug), ...hostnames.map(hostKey), ...removedHosts.map(hostKey)].filter(
    (key) => !desired.has(key),
  );
  for (const key of new Set(stale)) await deps.kv.delete(key);
  deps.onProjected?.();
}

export interface CreateTenantInput {
  readonly slug: string;
  readonly region: string;
  readonly plan?: string | undefined;
  readonly provisioner?: ProvisionerKind | undefined;
  readonly domains?: readonly string[] | undefined;
  /** For the `url` provisioner: the existing database's connection string (app role). */
  readonly connectionString?: string | undefined;
  /** For the `url` provisioner: a connection string allowed to run migrations (defaults to the above). */
  readonly migrationConnectionString?: string | undefined;
}

export async function createTenant(deps: ControlDeps, input: CreateTenantInput): Promise<TenantView> {
  return audited(
    deps,
    "tenant.create",
    input.slug,
    async () => {
      if (!isValidSlug(input.slug)) {
        throw new AppError(422, "validation_failed", "Invalid slug.", {
          extras: {
            errors: [
              { path: "slug", message: "3–32 lowercase letters, digits and single dashes, starting with a letter" },
            ],
          },
        });
      }
      const kind = input.provisioner ?? deps.defaultProvisioner;
      const provisioner = provisionerFor(deps, kind);
      if (!provisioner.regions().includes(input.region)) {
        throw new AppError(
          422,
          "region_unsupported",
          `The ${kind} provisioner has no target in region ${input.region}.`,
          {
            extras: { errors: [{ path: "region", message: `supported: ${provisioner.regions().join(", ")}` }] },
          },
        );
      }
      const hostnames = [...new Set((input.domains ?? []).map((d) => normaliseDomain(d, deps.reservedHosts)))];
      const id = newTenantId();
      let secrets: { dbSecret: string; migrationSecret: string } | undefined;
      if (kind === "url") {
        if (!input.connectionString) {
          throw new AppError(422, "validation_failed", "The url provisioner needs a connection string.", {
            extras: { errors: [{ path: "connectionString", message: "required for provisioner url" }] },
          });
        }
        secrets = {
          dbSecret: await encryptSecret(ring(deps.encryptionKeys), input.connectionString, tenantAad(id)),
          migrationSecret: await encryptSecret(
            ring(deps.encryptionKeys),
            input.migrationConnectionString ?? input.connectionString,
            migrationAad(id),
          ),
        };
      }
      try {
        await deps.db.batch([
          deps.db.insert(tenants).values({
            id,
            slug: input.slug,
            status: secrets ? "migrating" : "provisioning",
            region: input.region,
            plan: input.plan ?? "standard",
            provisioner: kind,
            ...(secrets ?? {}),
          }),
          ...hostnames.map((hostname) => deps.db.insert(domains).values({ hostname, tenantId: id })),
        ]);
      } catch (error) {
        if (isUniqueViolation(error, "tenants_slug_key"))
          throw new AppError(409, "conflict", "A tenant with this slug exists (slugs are never reused).");
        if (isUniqueViolation(error)) throw new AppError(409, "conflict", "A domain is already mapped to a tenant.");
        throw error;
      }
      await deps.afterStep?.("created", id);
      return onboard(deps, id);
    },
    (tenant) => ({ id: tenant.id, region: tenant.region, status: tenant.status }),
  );
}

/** How long one onboarding run may hold a tenant before another may take over (a crashed run's lease lapses). */
const ONBOARDING_LEASE = "5 minutes";

/**
 * Runs (or resumes) onboarding until the tenant is active; on failure records where and why. One
 * run at a time per tenant: a run takes the tenant's lease first (an atomic update in the control
 * database) and a second run meanwhile is refused with 409, so two retries never provision twice
 * or leave the tenant with the other run's credentials. A run releases only its own lease.
 */
async function onboard(deps: ControlDeps, id: string): Promise<TenantView> {
  const leased = await deps.db
    .update(tenants)
    .set({ onboardingLeaseUntil: sql`now() + ${ONBOARDING_LEASE}::interval` })
    .where(
      and(eq(tenants.id, id), or(isNull(tenants.onboardingLeaseUntil), lt(tenants.onboardingLeaseUntil, sql`now()`))),
    )
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
          await update(deps, id, {
            status: "migrating",
            resourceRef: { ...result.ref },
            dbSecret: await encryptSecret(ring(deps.encryptionKeys), result.connectionUri, tenantAad(id)),
            migrationSecret: await encryptSecret(ring(deps.encryptionKeys), result.migrationUri, migrationAad(id)),
            failedStep: null,
            failureReason: null,
          });
          await deps.afterStep?.("provisioned", id);
          break;
        }
        case "migrating": {
          const uri = await decryptOrFail(
            deps.encryptionKeys,
            row.migrationSecret,
            migrationAad(id),
            "migration connection",
          );
          const migrated = await migrateDatabase(neon(uri), deps.tenantBundle);
          // Active only once migrated: the edge never sees a tenant whose schema is not there.
          const active = await update(deps, id, {
            status: "active",
            schemaVersion: migrated.version,
            failedStep: null,
            failureReason: null,
          });
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
      await update(deps, id, { status: "failed", failedStep, failureReason: safeReason(error) }).catch(() => undefined);
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

export async function getTenant(deps: ControlDeps, slug: string): Promise<TenantView> {
  const row = await loadBySlug(deps, slug);
  return view(row, await domainsOf(deps, row.id));
}

export interface ListOptions {
  readonly status?: TenantState | undefined;
  readonly region?: string | undefined;
  readonly limit: number;
  /** Opaque cursor from the previous page (the last tenant id). */
  readonly cursor?: string | undefined;
}

export async function listTenants(
  deps: ControlDeps,
  options: ListOptions,
): Promise<{ items: TenantView[]; next?: string }> {
  const filters: SQL[] = [];
  if (options.status) filters.push(eq(tenants.status, options.status));
  if (options.region) filters.push(eq(tenants.region, options.region));
  if (options.cursor) filters.push(gt(tenants.id, options.cursor));
  const rows = await deps.db
    .select()
    .from(tenants)
    .where(filters.length ? and(...filters) : undefined)
    .orderBy(asc(tenants.id))
    .limit(options.limit + 1);
  const page = rows.slice(0, options.limit);
  const ids = page.map((row) => row.id);
  const hostRows = ids.length
    ? await deps.db.select().from(domains).where(inArray(domains.tenantId, ids)).orderBy(asc(domains.hostname))
    : [];
  const items = page.map((row) =>
    view(
      row,
      hostRows.filter((h) => h.tenantId === row.id).map((h) => h.hostname),
    ),
  );
  const last = page.at(-1);
  return rows.length > options.limit && last ? { items, next: last.id } : { items };
}

async function setStatus(
  deps: ControlDeps,
  slug: string,
  action: string,
  from: TenantState,
  to: TenantState,
): Promise<TenantView> {
  return audited(deps, action, slug, async () => {
    const row = await loadBySlug(deps, slug);
    if (row.status === to) return view(row, await domainsOf(deps, row.id));
    if (row.status !== from)
      throw new AppError(
        409,
        "invalid_state",
        `Only a ${from} tenant can be ${to === "suspended" ? "suspended" : "resumed"}; this one is ${row.status}.`,
      );
    const updated = await update(deps, row.id, { status: to });
    await projectTenant(deps, updated);
    return view(updated, await domainsOf(deps, row.id));
  });
}

export const suspendTenant = (deps: ControlDeps, slug: string) =>
  setStatus(deps, slug, "tenant.suspend", "active", "suspended");
export const resumeTenant = (deps: ControlDeps, slug: string) =>
  setStatus(deps, slug, "tenant.resume", "suspended", "active");

/**
 * GDPR delete: the slug must be echoed back; KV records go first (the edge stops serving), then the
 * database and role are dropped, then the tenant is marked deleted with its secrets erased. The
 * audit record stays. Safe to repeat after an interruption.
 */
export async function deleteTenant(deps: ControlDeps, slug: string, confirm: string | undefined): Promise<TenantView> {
  return audited(deps, "tenant.delete", slug, async () => {
    if (confirm !== slug) {
      throw new AppError(
        422,
        "confirmation_required",
        "Deleting a tenant drops its database: echo its slug as confirmation.",
        {
          extras: { errors: [{ path: "confirm", message: "must equal the tenant's slug" }] },
        },
      );
    }
    const row = await loadBySlug(deps, slug);
    if (row.status === "deleted") return view(row, []);
    const hostnames = await domainsOf(deps, row.id);
    const deleting = await update(deps, row.id, { status: "deleting" });
    await projectTenant(deps, deleting);
    const provisioner = provisionerFor(deps, row.provisioner);
    if (row.provisioner !== "url") {
      await provisioner.deprovision({ tenantId: row.id, slug: row.slug, region: row.region }, row.resourceRef ?? {});
    }
    await deps.db.delete(domains).where(eq(domains.tenantId, row.id));
    const deleted = await update(deps, row.id, {
      status: "deleted",
      deletedAt: new Date().toISOString(),
      dbSecret: null,
      migrationSecret: null,
    });
    await projectTenant(deps, deleted, hostnames);
    return view(deleted, []);
  });
}

export async function addDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.add",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, deps.reservedHosts);
      const row = await loadBySlug(deps, slug);
      if (row.status === "deleted" || row.status === "deleting")
        throw new AppError(409, "invalid_state", "The tenant is deleted.");
      try {
        await deps.db.insert(domains).values({ hostname, tenantId: row.id });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const [owner] = await deps.db.select().from(domains).where(eq(domains.hostname, hostname));
        if (owner?.tenantId !== row.id) throw new AppError(409, "conflict", "This domain is mapped to another tenant.");
      }
      await projectTenant(deps, row);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}

export async function removeDomain(deps: ControlDeps, slug: string, domain: string): Promise<TenantView> {
  return audited(
    deps,
    "domain.remove",
    slug,
    async () => {
      const hostname = normaliseDomain(domain, []);
      const row = await loadBySlug(deps, slug);
      const removed = await deps.db
        .delete(domains)
        .where(and(eq(domains.hostname, hostname), eq(domains.tenantId, row.id)))
        .returning();
      if (removed.length === 0) throw new AppError(404, "not_found", "This domain is not mapped to this tenant.");
      await projectTenant(deps, row, [hostname]);
      return view(row, await domainsOf(deps, row.id));
    },
    () => ({ domain }),
  );
}

export interface ReconcileReport {
  readonly checked: number;
  readonly missing: number;
  readonly stale: number;
  readonly orphan: number;
  readonly ok: number;
}

function sameRecord(stored: TenantRecord | undefined, wanted: TenantRecord): boolean {
  return (
    stored !== undefined &&
    stored.id === wanted.id &&
    stored.slug === wanted.slug &&
    stored.status === wanted.status &&
    stored.region === wanted.region &&
    stored.schemaVersion === wanted.schemaVersion &&
    stored.db === wanted.db
  );
}

async function kvKeys(kv: KvStore, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix, cursor });
    names.push(...page.keys.map((key) => key.name));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return names;
}

/**
 * Repairs drift between the control database and KV: missing records are written, stale ones
 * rewritten, orphans (keys no tenant should have) deleted. Run by cron and on demand.
 */
export async function reconcile(deps: ControlDeps): Promise<ReconcileReport> {
  return audited(
    deps,
    "kv.reconcile",
    "*",
    async () => {
      const desired = new Map<string, TenantRecord>();
      let cursor: string | undefined;
      for (;;) {
        const page = await deps.db
          .select()
          .from(tenants)
          .where(and(inArray(tenants.status, [...PROJECTED]), cursor ? gt(tenants.id, cursor) : undefined))
          .orderBy(asc(tenants.id))
          .limit(500);
        if (page.length === 0) break;
        const hostRows = await deps.db
          .select()
          .from(domains)
          .where(
            inArray(
              domains.tenantId,
              page.map((row) => row.id),
            ),
          );
        for (const row of page) {
          const hosts = hostRows.filter((h) => h.tenantId === row.id).map((h) => h.hostname);
          for (const [key, record] of desiredRecords(row, hosts)) desired.set(key, record);
        }
        cursor = page.at(-1)?.id;
      }
      let missing = 0;
      let stale = 0;
      let ok = 0;
      for (const [key, wanted] of desired) {
        const text = await deps.kv.get(key, "text");
        if (text === null) missing += 1;
        else {
          let stored: TenantRecord | undefined;
          try {
            stored = parseTenantRecord(JSON.parse(text));
          } catch {
            stored = undefined;
          }
          if (sameRecord(stored, wanted)) {
            ok += 1;
            continue;
          }
          stale += 1;
        }
        await deps.kv.put(key, JSON.stringify(wanted));
      }
      let orphan = 0;
      for (const key of [...(await kvKeys(deps.kv, "host:")), ...(await kvKeys(deps.kv, "slug:"))]) {
        if (!desired.has(key)) {
          orphan += 1;
          await deps.kv.delete(key);
        }
      }
      if (missing + stale + orphan > 0) deps.onProjected?.();
      return { checked: desired.size, missing, stale, orphan, ok };
    },
    (report) => ({ ...report }),
  );
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

/** Decrypts a tenant's app connection string (for control-plane work such as exports). */
export async function tenantConnection(deps: ControlDeps, row: TenantRow): Promise<string> {
  return decryptOrFail(deps.encryptionKeys, row.dbSecret, tenantAad(row.id), "database connection");
}
