/**
 * Applying bundled migrations to one tenant database over Neon's HTTP driver (runs in the Worker
 * and in Node). Each migration is one batch transaction holding a transaction-level advisory lock,
 * its ledger row and its statements: a duplicate or concurrent run is a no-op, a failure leaves
 * nothing behind, and a ledger checksum that differs from the bundle is drift, never "fixed".
 */
import type { NeonQueryFunction } from "@neondatabase/serverless";
import { type DropTarget, dropsOf } from "./destructive-sql.ts";
import { type LockPolicy, lockPolicy, timeoutStatements, withLockRetry } from "./migration-locks.ts";

export interface Migration {
  readonly name: string;
  /** sha256 of the migration file as generated. */
  readonly checksum: string;
  readonly statements: readonly string[];
  /** Statements that undo it, from `<name>.down.sql`, or null when it has none. */
  readonly down: readonly string[] | null;
  /**
   * Set by a `-- tenantry:pause-writes` line in the migration file: the tenant is answered 503
   * `tenant_migrating` at the edge while this migration (or its undo) runs on it.
   */
  readonly pauseWrites?: boolean;
}

export type MigrationBundle = readonly Migration[];

export type Sql = NeonQueryFunction<false, false>;

/**
 * Ledger table inside every tenant database, in its own schema: tenant app roles get no USAGE on
 * it, so the app can neither read nor forge migration history.
 */
export const LEDGER_SCHEMA = "tenantry";
export const LEDGER_TABLE = `${LEDGER_SCHEMA}.migrations`;
/** Serialises migration work on one database (pg_advisory_xact_lock key). */
export const MIGRATION_LOCK_KEY = "7394528117712213";

export class MigrationDriftError extends Error {
  override readonly name = "MigrationDriftError";
  constructor(
    readonly migration: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`migration ${migration} was applied with a different checksum than the bundle's`);
  }
}

/**
 * A migration (or its undo) that failed in the database: names it, and keeps the database's own
 * SQLSTATE and message (the original error is its `cause`).
 */
export class MigrationFailedError extends Error {
  override readonly name = "MigrationFailedError";
  readonly code: string | undefined;
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    const code = codeOf(cause);
    this.code = typeof code === "string" ? code : undefined;
  }
}

export interface AppliedMigration {
  readonly name: string;
  readonly checksum: string;
}

export interface MigrateResult {
  readonly applied: readonly string[];
  readonly alreadyApplied: readonly string[];
  /** Latest migration name in the database after the run, or null for none. */
  readonly version: string | null;
}

const codeOf = (error: unknown) =>
  typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;

const isUniqueViolation = (error: unknown) => codeOf(error) === "23505";

const LEDGER_DDL = [
  `CREATE SCHEMA IF NOT EXISTS ${LEDGER_SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
];

/**
 * Creates the ledger when missing and reads it, in one round trip: one batch holding the advisory
 * lock (so two first runs cannot both create it), the idempotent DDL and the read.
 */
async function ensureAndReadLedger(sql: Sql, policy: LockPolicy): Promise<AppliedMigration[]> {
  const results = (await withLockRetry(policy, () =>
    sql.transaction([
      ...begin(sql, policy),
      ...LEDGER_DDL.map((statement) => sql.query(statement)),
      sql.query(`SELECT name, checksum FROM ${LEDGER_TABLE} ORDER BY name`),
    ]),
  )) as unknown[][];
  return (results.at(-1) ?? []) as AppliedMigration[];
}

export async function appliedMigrations(sql: Sql): Promise<AppliedMigration[]> {
  // A database never migrated has no ledger yet: that is "nothing applied", not an error.
  const [exists] = await sql.query(`SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS present`);
  if (!(exists as { present?: boolean } | undefined)?.present) return [];
  const rows = await sql.query(`SELECT name, checksum FROM ${LEDGER_TABLE} ORDER BY name`);
  return rows as AppliedMigration[];
}

/** Compares the ledger with the bundle: throws MigrationDriftError on a checksum mismatch. */
export function pendingMigrations(bundle: MigrationBundle, applied: readonly AppliedMigration[]): Migration[] {
  const done = new Map(applied.map((row) => [row.name, row.checksum]));
  for (const migration of bundle) {
    const found = done.get(migration.name);
    if (found !== undefined && found !== migration.checksum) {
      throw new MigrationDriftError(migration.name, migration.checksum, found);
    }
  }
  return bundle.filter((migration) => !done.has(migration.name));
}

/** How every migration transaction starts: its timeouts (migration-locks.ts), then the advisory lock. */
function begin(sql: Sql, policy: LockPolicy) {
  return [
    ...timeoutStatements(policy).map((statement) => sql.query(statement)),
    sql.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`),
  ];
}

/** One batch: the lock, then each migration's ledger row and statements, in order; retried on 55P03. */
function applyBatch(sql: Sql, migrations: readonly Migration[], policy: LockPolicy) {
  return withLockRetry(policy, () =>
    sql.transaction([
      ...begin(sql, policy),
      ...migrations.flatMap((migration) => [
        sql.query(`INSERT INTO ${LEDGER_TABLE} (name, checksum) VALUES ($1, $2)`, [migration.name, migration.checksum]),
        ...migration.statements.map((statement) => sql.query(statement)),
      ]),
    ]),
  );
}

export interface LockOptions {
  /** Lock and statement timeouts and retries of each transaction (defaults: DEFAULT_LOCK_POLICY). */
  readonly lock?: Partial<LockPolicy> | undefined;
}

/**
 * Applies every pending migration of `bundle` (up to `target` when given), in order.
 *
 * Two round trips in the common case: one to create/read the ledger, one batch applying every
 * pending migration with its ledger row. When that batch fails, nothing of it is left and the
 * pending migrations are applied again one batch each: the ones before the failing one land (as
 * they would have one by one), and the error thrown is the failing migration's own.
 */
export async function migrateDatabase(
  sql: Sql,
  bundle: MigrationBundle,
  target?: string,
  options: LockOptions = {},
): Promise<MigrateResult> {
  const policy = lockPolicy(options.lock);
  const upTo = target === undefined ? bundle.length : bundle.findIndex((m) => m.name === target) + 1;
  if (upTo === 0) throw new Error(`unknown target migration ${target}`);
  const wanted = bundle.slice(0, upTo);
  const pending = pendingMigrations(wanted, await ensureAndReadLedger(sql, policy));
  const applied: string[] = [];
  let together = pending.length > 1;
  if (together) {
    try {
      await applyBatch(sql, pending, policy);
      applied.push(...pending.map((m) => m.name));
    } catch {
      together = false;
    }
  }
  if (!together) {
    for (const migration of pending) {
      try {
        await applyBatch(sql, [migration], policy);
        applied.push(migration.name);
      } catch (error) {
        // Another run applied it between our read and our batch: its ledger row won the race.
        if (!isUniqueViolation(error) || !(await isApplied(sql, migration))) {
          throw new MigrationFailedError(migration.name, error);
        }
      }
    }
  }
  const last = wanted.at(-1)?.name ?? null;
  return {
    applied,
    alreadyApplied: wanted.filter((m) => !applied.includes(m.name)).map((m) => m.name),
    version: last,
  };
}

async function isApplied(sql: Sql, migration: Migration): Promise<boolean> {
  const rows = await sql.query(`SELECT checksum FROM ${LEDGER_TABLE} WHERE name = $1`, [migration.name]);
  const found = (rows[0] as { checksum?: string } | undefined)?.checksum;
  if (found !== undefined && found !== migration.checksum) {
    throw new MigrationDriftError(migration.name, migration.checksum, found);
  }
  return found !== undefined;
}

/** SQLSTATE raised on purpose at the end of a dry run, so Postgres rolls everything back. */
export const DRY_RUN_SQLSTATE = "TNDRY";
const RAISE_DRY_RUN = `DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '${DRY_RUN_SQLSTATE}', MESSAGE = 'tenantry dry run: rolled back'; END $$`;

/**
 * Dry run: every pending migration (up to `target`) applied with its ledger row in ONE batch that
 * ends by raising on purpose, so Postgres rolls it all back. Resolves with what would be applied;
 * rejects with the error of the statement that would fail. Changes nothing, even the ledger.
 */
export async function dryRunMigrations(
  sql: Sql,
  bundle: MigrationBundle,
  target?: string,
  options: LockOptions = {},
): Promise<MigrateResult> {
  const policy = lockPolicy(options.lock);
  const upTo = target === undefined ? bundle.length : bundle.findIndex((m) => m.name === target) + 1;
  if (upTo === 0) throw new Error(`unknown target migration ${target}`);
  const wanted = bundle.slice(0, upTo);
  const pending = pendingMigrations(wanted, await appliedMigrations(sql));
  if (pending.length > 0) {
    try {
      await withLockRetry(policy, () =>
        sql.transaction([
          ...begin(sql, policy),
          ...LEDGER_DDL.map((statement) => sql.query(statement)),
          ...pending.flatMap((migration) => [
            sql.query(`INSERT INTO ${LEDGER_TABLE} (name, checksum) VALUES ($1, $2)`, [
              migration.name,
              migration.checksum,
            ]),
            ...migration.statements.map((statement) => sql.query(statement)),
          ]),
          sql.query(RAISE_DRY_RUN),
        ]),
      );
    } catch (error) {
      if (codeOf(error) !== DRY_RUN_SQLSTATE) throw error;
    }
  }
  return {
    applied: pending.map((m) => m.name),
    alreadyApplied: wanted.filter((m) => !pending.includes(m)).map((m) => m.name),
    version: wanted.at(-1)?.name ?? null,
  };
}

export interface RollbackResult {
  readonly rolledBack: readonly string[];
  /** Latest migration still applied afterwards, or null. */
  readonly version: string | null;
  /** What the undone down files drop or truncate (destructive-sql.ts); a dry run lists it too. */
  readonly drops: readonly DropTarget[];
}

/**
 * What a rollback of `steps` migrations from version `from` undoes: the `steps` bundle migrations
 * ending at `from`, newest first, less those no longer applied (a duplicate or resumed rollback
 * finds them gone). The set depends on `from`, not on the ledger's state when it is read, so a
 * second delivery of the same rollback cannot undo a further migration. Refuses when the database
 * holds a migration newer than `from`: the caller's idea of the version is wrong. Each migration
 * still to undo must have a down file.
 */
export function planRollback(
  bundle: MigrationBundle,
  applied: readonly AppliedMigration[],
  steps: number,
  from: string | null,
): Migration[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  pendingMigrations(bundle, applied); // throws on drift
  const index = new Map(bundle.map((m, i) => [m.name, i]));
  const fromIndex = from === null ? -1 : index.get(from);
  if (fromIndex === undefined) throw new Error(`migration ${from} is not in the bundle`);
  for (const row of applied) {
    const at = index.get(row.name);
    if (at === undefined) throw new Error(`migration ${row.name} is applied but not in the bundle`);
    if (at > fromIndex) {
      throw new Error(
        `the database has ${row.name} applied, newer than ${from ?? "none"}, the version to roll back from; nothing was rolled back`,
      );
    }
  }
  const done = new Set(applied.map((row) => row.name));
  return bundle
    .slice(Math.max(0, fromIndex - steps + 1), fromIndex + 1)
    .reverse()
    .filter((migration) => done.has(migration.name))
    .map((migration) => {
      if (!migration.down) throw new Error(`migration ${migration.name} has no down file`);
      return migration;
    });
}

export interface RollbackOptions {
  /** How many migrations to undo, counting back from `from`. */
  readonly steps: number;
  /**
   * The version the caller rolls back from (the control plane's record of the tenant), or null
   * for none. Makes the rollback idempotent: run twice, at once or one after the other, it undoes
   * the same migrations once, never `steps` more.
   */
  readonly from: string | null;
  readonly dryRun?: boolean;
  readonly lock?: Partial<LockPolicy> | undefined;
  /**
   * Called once before anything is undone when the plan drops or truncates something (not on a dry
   * run): takes the export of what will go, or throws to refuse the rollback (nothing is undone).
   */
  readonly beforeDrop?: ((drops: readonly DropTarget[]) => Promise<void>) | undefined;
}

/**
 * Rolls back `steps` migrations from version `from` (see planRollback), each in one batch with its
 * ledger row removal. A batch first proves its ledger row is still there (division by zero
 * otherwise), so a concurrent run undoing the same migration makes it a no-op. With `dryRun`, all
 * of it runs in one batch that is rolled back.
 */
export async function rollbackMigrations(
  sql: Sql,
  bundle: MigrationBundle,
  { steps, from, dryRun = false, lock, beforeDrop }: RollbackOptions,
): Promise<RollbackResult> {
  const policy = lockPolicy(lock);
  const applied = await appliedMigrations(sql);
  const plan = planRollback(bundle, applied, steps, from);
  const drops = dropsOf(plan);
  const undone = new Set(plan.map((m) => m.name));
  const remaining = new Set(applied.map((row) => row.name).filter((name) => !undone.has(name)));
  const version = bundle.findLast((m) => remaining.has(m.name))?.name ?? null;
  const undo = (migration: Migration) => [
    sql.query(`SELECT 1 / count(*)::int FROM ${LEDGER_TABLE} WHERE name = $1`, [migration.name]),
    sql.query(`DELETE FROM ${LEDGER_TABLE} WHERE name = $1`, [migration.name]),
    ...(migration.down ?? []).map((statement) => sql.query(statement)),
  ];
  if (dryRun) {
    if (plan.length > 0) {
      try {
        await withLockRetry(policy, () =>
          sql.transaction([...begin(sql, policy), ...plan.flatMap(undo), sql.query(RAISE_DRY_RUN)]),
        );
      } catch (error) {
        if (codeOf(error) !== DRY_RUN_SQLSTATE) throw error;
      }
    }
    return { rolledBack: plan.map((m) => m.name), version, drops };
  }
  if (drops.length > 0) await beforeDrop?.(drops);
  const rolledBack: string[] = [];
  for (const migration of plan) {
    try {
      await withLockRetry(policy, () => sql.transaction([...begin(sql, policy), ...undo(migration)]));
      rolledBack.push(migration.name);
    } catch (error) {
      // 22012: the ledger row was gone, another run rolled this migration back first.
      if (codeOf(error) !== "22012") throw new MigrationFailedError(migration.name, error);
    }
  }
  return { rolledBack, version, drops };
}
