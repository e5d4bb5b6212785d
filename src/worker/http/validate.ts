/** zod validation for JSON bodies, params and queries: 422 `validation_failed` with field paths. */
import type { Context } from "hono";
import type { z } from "zod";
import { AppError } from "../../shared/errors.ts";

function fail(issues: readonly z.core.$ZodIssue[]): never {
  throw new AppError(422, "validation_failed", "The request has invalid fields.", {
    extras: {
      errors: issues.slice(0, 20).map((issue) => ({ path: issue.path.join(".") || "(root)", message: issue.message })),
    },
  });
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) fail(result.error.issues);
  return result.data;
}

/** Reads a JSON body: 400 `bad_request` when it is not JSON, 422 when it does not fit `schema`. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let value: unknown;
  try {
    value = await c.req.json();
  } catch {
    throw new AppError(400, "bad_request", "The request body must be JSON.");
  }
  return parseWith(schema, value);
}
