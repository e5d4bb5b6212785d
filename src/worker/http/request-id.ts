/**
 * Request ids are generated at the edge, never taken from the client. The id ends up in the
 * `X-Request-Id` response header, every log line and the admin audit log, where it correlates an
 * action with its request: if a client could choose it (as Hono's requestId middleware allows,
 * it keeps any `X-Request-Id` of word characters), it could forge that correlation or collide
 * with another request's id (issue 16, finding 3). A client's own id is still useful to trace a
 * call across systems, so it is kept apart, bounded and sanitized, as `clientRequestId` in logs
 * only: never echoed as the id, never stored in the audit log.
 */
import { createMiddleware } from "hono/factory";

/** Longest client id kept; longer ones are cut. */
const MAX_CLIENT_ID = 64;

/** The client's `X-Request-Id` reduced to a safe log value, or `undefined` when nothing is left. */
export function clientRequestId(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  // Printable ASCII without quotes or backslashes: nothing that could fake log structure.
  const kept = header.replace(/[^A-Za-z0-9._:/+=@-]/g, "").slice(0, MAX_CLIENT_ID);
  return kept === "" ? undefined : kept;
}

export interface RequestIdVariables {
  /** This request's id, generated here. */
  requestId: string;
  /** The client's own `X-Request-Id`, sanitized; for logs only. */
  clientRequestId: string | undefined;
}

export function edgeRequestId() {
  return createMiddleware<{ Variables: RequestIdVariables }>(async function edgeRequestIdMiddleware(c, next) {
    const id = crypto.randomUUID();
    c.set("requestId", id);
    c.set("clientRequestId", clientRequestId(c.req.header("x-request-id")));
    c.header("x-request-id", id);
    await next();
  });
}
