/**
 * DDL under traffic: every migration transaction starts with a short `lock_timeout` and a bounded
 * `statement_timeout` (SET LOCAL, so they end with the transaction). An ALTER TABLE waiting for its
 * ACCESS EXCLUSIVE lock behind a long transaction would otherwise sit at the head of the table's
 * lock queue and stall every SELECT and INSERT that arrives after it; with a short lock timeout it
 * gives up (SQLSTATE 55P03), the queued traffic goes through, and the transaction is tried again
 * after a backoff, a bounded number of times.
 */

export interface LockPolicy {
  /** How long one statement may wait for a lock before it gives up (ms). */
  readonly lockTimeoutMs: number;
  /** How long one statement may run at all (ms). */
  readonly statementTimeoutMs: number;
  /** How many times a transaction that could not take its lock is tried again. */
  readonly retries: number;
  /** First wait before a retry (ms), doubled each time (with jitter) up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Called before each retry (tests and logs). */
  readonly onRetry?: ((attempt: number, error: unknown) => void) | undefined;
}

export const DEFAULT_LOCK_POLICY: LockPolicy = {
  lockTimeoutMs: 2_000,
  statementTimeoutMs: 120_000,
  retries: 6,
  backoffMs: 500,
  maxBackoffMs: 15_000,
};

/** SQLSTATE lock_not_available: a lock_timeout expired (or NOWAIT failed). */
export const LOCK_NOT_AVAILABLE = "55P03";

const whole = (value: number, fallback: number) => (Number.isInteger(value) && value > 0 ? value : fallback);

/** The policy with every missing or invalid field taken from the defaults. */
export function lockPolicy(overrides: Partial<LockPolicy> = {}): LockPolicy {
  const d = DEFAULT_LOCK_POLICY;
  return {
    lockTimeoutMs: whole(overrides.lockTimeoutMs ?? d.lockTimeoutMs, d.lockTimeoutMs),
    statementTimeoutMs: whole(overrides.statementTimeoutMs ?? d.statementTimeoutMs, d.statementTimeoutMs),
    retries:
      Number.isInteger(overrides.retries) && (overrides.retries ?? -1) >= 0 ? (overrides.retries as number) : d.retries,
    backoffMs: whole(overrides.backoffMs ?? d.backoffMs, d.backoffMs),
    maxBackoffMs: whole(overrides.maxBackoffMs ?? d.maxBackoffMs, d.maxBackoffMs),
    onRetry: overrides.onRetry,
  };
}

/** The two SET LOCAL statements every migration transaction starts with (values are integers: ms). */
export function timeoutStatements(policy: LockPolicy): string[] {
  return [
    `SET LOCAL lock_timeout = ${Math.trunc(policy.lockTimeoutMs)}`,
    `SET LOCAL statement_timeout = ${Math.trunc(policy.statementTimeoutMs)}`,
  ];
}

const codeOf = (error: unknown) =>
  typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;

export const isLockTimeout = (error: unknown) => codeOf(error) === LOCK_NOT_AVAILABLE;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` (one migration transaction), trying it again with exponential backoff and jitter
 * while it fails only because it could not take a lock in time. Any other error, or a lock timeout
 * after the last retry, is thrown as is.
 */
export async function withLockRetry<T>(policy: LockPolicy, work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isLockTimeout(error) || attempt > policy.retries) throw error;
      policy.onRetry?.(attempt, error);
      const ceiling = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1));
      await sleep(Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
    }
  }
}
