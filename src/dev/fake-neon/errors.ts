/**
 * How the fake answers a refusal, as Neon does: a JSON body `{ request_id, code, message }` with
 * the status the real API uses. Store rules fail with a reason (`model.ts`) mapped here to 400,
 * 404, 409 or 423; request-level problems (unreadable body, bad query) are Hono
 * `HTTPException`s carrying their status; anything else is a generic 500, so a bug in the fake
 * shows up as a server error rather than as a plausible Neon answer.
 */

import { randomUUID } from "node:crypto";
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type FakeNeonFailure, FakeNeonStateError } from "./model.ts";
import type { FakeNeonEnv } from "./routes.ts";

const STATUS: Record<FakeNeonFailure, ContentfulStatusCode> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  locked: 423,
};

/** Neon's error body; `code` is empty in the answers the fake imitates. */
export function neonError(
  c: Context<FakeNeonEnv>,
  status: number,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return c.json({ request_id: randomUUID(), code: "", message }, status as ContentfulStatusCode, headers);
}

export const answerError: ErrorHandler<FakeNeonEnv> = function answerError(error, c) {
  if (error instanceof FakeNeonStateError) return neonError(c, STATUS[error.reason], error.message);
  if (error instanceof HTTPException) return neonError(c, error.status, error.message);
  return neonError(c, 500, "internal error");
};
