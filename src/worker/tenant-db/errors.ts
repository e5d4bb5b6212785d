/**
 * Translates Neon driver / Postgres failures into AppErrors at the database boundary, so no driver
 * text, SQL or connection string ever reaches a response. SQLSTATE classes per the Postgres manual,
 * Appendix A.
 */
import { AppError } from "../../shared/errors.ts";

interface PgLike {
  code?: unknown;
  constraint?: unknown;
  sourceError?: unknown;
  message?: unknown;
  cause?: unknown;
  name?: unknown;
}

/** drizzle wraps driver errors in DrizzleQueryError(query, params, cause): the cause is what counts. */
function unwrap(error: unknown): PgLike {
  let current = error as PgLike;
  for (let depth = 0; depth < 3 && current && typeof current === "object"; depth++) {
    if (typeof current.code === "string" || current.sourceError !== undefined) return current;
    if (current.cause === undefined) break;
    current = current.cause as PgLike;
  }
  return (current ?? {}) as PgLike;
}

const RETRY = { "retry-after": "5" };

export function translateDbError(error: unknown, constraintCodes: Readonly<Record<string, AppError>> = {}): AppError {
  if (error instanceof AppError) return error;
  const pg = unwrap(error);
  const code = typeof pg.code === "string" ? pg.code : undefined;
  const constraint = typeof pg.constraint === "string" ? pg.constraint : undefined;
  if (constraint && constraintCodes[constraint]) return constraintCodes[constraint];
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    const cls = code.slice(0, 2);
    if (code === "23505")
      return new AppError(409, "conflict", "A record with the same unique value already exists.", { cause: error });
    if (code === "23503")
      return new AppError(422, "constraint_violation", "A referenced record does not exist.", { cause: error });
    if (cls === "23")
      return new AppError(422, "constraint_violation", "The data breaks a rule of the database.", { cause: error });
    if (cls === "22")
      return new AppError(422, "validation_failed", "A value is out of range or malformed.", { cause: error });
    // Connection, resources, operator intervention, auth, timeouts, serialisation: the database, not the caller.
    if (["08", "53", "57", "58", "28", "40", "3D"].includes(cls)) {
      return new AppError(503, "db_unavailable", "The tenant database is unavailable; retry shortly.", {
        cause: error,
        headers: RETRY,
      });
    }
    return new AppError(500, "internal_error", undefined, { cause: error });
  }
  // No SQLSTATE: the HTTP request to the database failed, timed out, or got a non-400 answer.
  return new AppError(503, "db_unavailable", "The tenant database is unavailable; retry shortly.", {
    cause: error,
    headers: RETRY,
  });
}
