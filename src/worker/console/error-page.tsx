/**
 * Errors on console pages as a page, not JSON: the same AppError status and stable code the admin
 * API would answer (in `#error-code`, for people and tests alike), with nothing else from the error.
 * The JSON progress endpoint keeps problem+json, like the admin API.
 */
import type { Context } from "hono";
import { AppError, problemOf } from "../../shared/errors.ts";
import { createLogger } from "../http/log.ts";
import type { ConsoleEnv } from "./guard.ts";
import { Layout } from "./layout.tsx";

export function consoleError(error: Error, c: Context<ConsoleEnv>) {
  const known = error instanceof AppError ? error : new AppError(500, "internal_error");
  if (!(error instanceof AppError) || known.status >= 500) {
    (c.get("log") ?? createLogger(c.env?.LOG_LEVEL)).log("error", "request_failed", {
      code: known.code,
      errorName: error.name,
    });
  }
  const problem = problemOf(known, c.get("requestId"), new URL(c.req.url).pathname);
  if (c.req.path.endsWith(".json")) {
    return c.newResponse(JSON.stringify(problem), known.status, { "content-type": "application/problem+json" });
  }
  const session = c.get("session");
  return c.html(
    <Layout title={problem.title} session={session}>
      <div class="error" role="alert">
        <p>
          {problem.detail ?? problem.title} (<code id="error-code">{problem.code}</code>)
        </p>
        {problem.errors?.length ? (
          <ul>
            {problem.errors.map((e) => (
              <li>{`${e.path}: ${e.message}`}</li>
            ))}
          </ul>
        ) : null}
        {known.status === 401 ? (
          <p>
            <a href="/sign-in">Sign in</a>
          </p>
        ) : (
          <p>
            <a href="/">Back to the fleet</a>
          </p>
        )}
      </div>
    </Layout>,
    known.status,
  );
}
