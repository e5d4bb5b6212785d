/** What every Worker app shares: request id, Server-Timing, request log, body limit, /healthz, 404, problem+json. */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { timing } from "hono/timing";
import { AppError, problemOf } from "../../shared/errors.ts";
import { createLogger } from "./log.ts";
import { edgeRequestId } from "./request-id.ts";

const MAX_BODY_BYTES = 256 * 1024;

/** Request id, Server-Timing, request log, body limit, /healthz, 404 and the problem+json handler. */
// biome-ignore lint/suspicious/noExplicitAny: both the tenant app and the OpenAPI admin app pass through here.
export function installCommon<A extends Hono<any>>(app: A): A {
  app.use(edgeRequestId());
  app.use(timing({ total: true, crossOrigin: false }));
  app.use(async function requestLog(c, next) {
    const log = createLogger(c.env.LOG_LEVEL, {
      requestId: c.get("requestId"),
      clientRequestId: c.get("clientRequestId"),
    });
    c.set("log", log);
    const started = performance.now();
    await next();
    c.get("log").log(c.res.status >= 500 ? "error" : "info", "request", {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new AppError(413, "payload_too_large", `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );
  // Liveness needs no tenant (and reveals nothing about any).
  app.get("/healthz", (c) => c.json({ ok: true }));

  app.notFound(() => {
    throw new AppError(404, "not_found", "No such route.");
  });

  app.onError(function toProblem(error, c) {
    const log = c.get("log") ?? createLogger(c.env?.LOG_LEVEL);
    const known = error instanceof AppError ? error : undefined;
    const appError = known ?? new AppError(500, "internal_error");
    if (!known || appError.status >= 500) {
      // Name and code only: a driver message could carry SQL or a connection string.
      const cause = (known?.cause ?? error) as { name?: string; code?: string } | undefined;
      log.log("error", "request_failed", {
        code: appError.code,
        errorName: cause?.name ?? "Error",
        errorCode: typeof cause?.code === "string" ? cause.code : undefined,
      });
    }
    // c.newResponse keeps headers set earlier in the chain (x-request-id, Server-Timing).
    const problem = problemOf(appError, c.get("requestId"), new URL(c.req.url).pathname);
    return c.newResponse(JSON.stringify(problem), appError.status, {
      "content-type": "application/problem+json",
      ...appError.headers,
    });
  });
  return app;
}
