/**
 * The fake's call log: every request, in order, with the spec route it matched and the status it
 * got, so tests can assert how often and how the provisioner called Neon (retries, polls, the
 * query of a connection-string request). Recorded by the outermost middleware once the answer is
 * known, before it is sent.
 */
import type { MiddlewareHandler } from "hono";
import { API_BASE, type FakeNeonEnv, routeKey } from "./routes.ts";

export interface FakeNeonCall {
  readonly method: string;
  /** Route as in the OpenAPI spec, e.g. `POST /projects/{project_id}/branches`; `unknown` when none matched. */
  readonly route: string;
  /** The spec's operationId, e.g. `createProjectBranch`. */
  readonly operationId: string | undefined;
  /** Path below `/api/v2`, without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export function recordCalls(calls: FakeNeonCall[]): MiddlewareHandler<FakeNeonEnv> {
  return async function recordCall(c, next) {
    await next();
    const url = new URL(c.req.url);
    const below = url.pathname.startsWith(`${API_BASE}/`) ? url.pathname.slice(API_BASE.length) : "";
    const route = c.get("route");
    calls.push({
      method: c.req.method,
      route: route ? routeKey(route) : "unknown",
      operationId: route?.operationId,
      path: below || url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: c.res.status,
    });
  };
}

/** How many calls matched `name` (`"METHOD /template"` or an operationId). */
export const countCalls = (calls: readonly FakeNeonCall[], name: string) =>
  calls.filter((c) => c.route === name || (c.operationId !== undefined && c.operationId === name)).length;
