/**
 * Fault injection for tests: `failNext(route, status, times, headers)` makes the next `times`
 * requests to a route fail with that status (and headers, e.g. `retry-after` on a 429) before they
 * touch the store, so retries and resumption can be tested against failures the real API produces
 * (429 rate limits, 5xx, 4xx). The middleware runs after the API key check, like Neon's own
 * rate limiting and gateway errors.
 */
import type { MiddlewareHandler } from "hono";
import { neonError } from "./errors.ts";
import { type FakeNeonEnv, matchesRoute, NEON_ROUTES } from "./routes.ts";

export interface Fault {
  /** `"METHOD /template"` or an operationId. */
  readonly route: string;
  readonly status: number;
  remaining: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** Queues a fault; a route name the fake does not serve is a mistake in the test, so it throws. */
export function planFault(
  faults: Fault[],
  route: string,
  status: number,
  times = 1,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (!NEON_ROUTES.some((r) => matchesRoute(r, route))) throw new Error(`fake neon: no route ${JSON.stringify(route)}`);
  faults.push({ route, status, remaining: times, headers: { ...headers } });
}

export function injectFaults(faults: Fault[]): MiddlewareHandler<FakeNeonEnv> {
  return async function injectFault(c, next) {
    const route = c.get("route");
    const fault = faults.find((f) => f.remaining > 0 && route !== undefined && matchesRoute(route, f.route));
    if (!fault) return next();
    fault.remaining--;
    return neonError(c, fault.status, `injected HTTP ${fault.status}`, fault.headers);
  };
}
