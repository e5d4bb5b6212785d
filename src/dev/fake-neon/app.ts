/**
 * The fake Neon API as a Hono app over an in-memory store, with the controls tests use: the call
 * log, fault injection (`failNext`, `failOperationNext`) and copies of the store. Tests can drive
 * `app.request(...)` directly; `server.ts` serves the same app on a port for clients that need a
 * URL (the `neon` provisioner's axios client).
 *
 * Every request passes, in order: the call log (outermost, so it sees every answer), the matched
 * spec route, `Authorization: Bearer <apiKey>` (401 otherwise, as Neon does before anything
 * else), injected faults, then the endpoint's handler. A path the spec knows under another method
 * is 405, anything else 404, both after the key check.
 */

import type { Operation } from "@neondatabase/api-client";
import { Hono, type MiddlewareHandler } from "hono";
import { countCalls, type FakeNeonCall, recordCalls } from "./calls.ts";
import { answerError, neonError } from "./errors.ts";
import { type Fault, injectFaults, planFault } from "./faults.ts";
import { HANDLERS } from "./handlers.ts";
import type { FakeBranchState, FakeNeonState } from "./model.ts";
import { type DatabaseFor, type FakeNeonEnv, honoPath, NEON_ROUTES, type NeonRoute } from "./routes.ts";
import { branchSnapshots, createFakeNeonState, type FakeNeonStateOptions, operationSnapshots } from "./state.ts";

export interface FakeNeonAppOptions extends FakeNeonStateOptions {
  /** The only API key accepted; default `fake-neon-api-key`. */
  readonly apiKey?: string;
  /**
   * Connection string to hand out from `connection_uri` (e.g. a real local Postgres database).
   * Default: a placeholder `postgresql://<role>:<password>@ep-….<region>.aws.neon.tech/<db>?sslmode=require`.
   */
  readonly databaseFor?: DatabaseFor;
}

/** What tests see of the fake besides its HTTP surface. */
export interface FakeNeonControls {
  readonly apiKey: string;
  /** Every request, in order. */
  readonly calls: FakeNeonCall[];
  /** How many requests matched `route` (`"METHOD /template"` or an operationId). */
  count(route: string): number;
  /** Snapshot of a project's branches (deep copies). */
  branches(projectId: string): FakeBranchState[];
  /** The project's operations so far (copies). */
  operations(projectId: string): Operation[];
  /**
   * The next `times` requests matching `route` (`"METHOD /template"` as in the spec, or an
   * operationId) fail with `status` (and `headers`, e.g. `{ "retry-after": "3" }`) before
   * touching any state.
   */
  failNext(route: string, status: number, times?: number, headers?: Readonly<Record<string, string>>): void;
  /** The next operation created ends `failed` instead of `finished`. */
  failOperationNext(): void;
}

export interface FakeNeonApp extends FakeNeonControls {
  /** Serves `/api/v2/...`; drive it with `app.request(path, init)`. */
  readonly app: Hono<FakeNeonEnv>;
}

export function createFakeNeonApp(options: FakeNeonAppOptions = {}): FakeNeonApp {
  const apiKey = options.apiKey ?? "fake-neon-api-key";
  const state = createFakeNeonState(options);
  const calls: FakeNeonCall[] = [];
  const faults: Fault[] = [];
  return {
    app: buildApp({ apiKey, state, calls, faults, databaseFor: options.databaseFor }),
    apiKey,
    calls,
    count: (route) => countCalls(calls, route),
    branches: (projectId) => branchSnapshots(state, projectId),
    operations: (projectId) => operationSnapshots(state, projectId),
    failNext: (route, status, times, headers) => planFault(faults, route, status, times, headers),
    failOperationNext() {
      state.failNextOperation = true;
    },
  };
}

interface AppParts {
  readonly apiKey: string;
  readonly state: FakeNeonState;
  readonly calls: FakeNeonCall[];
  readonly faults: Fault[];
  readonly databaseFor: DatabaseFor | undefined;
}

function buildApp({ apiKey, state, calls, faults, databaseFor }: AppParts): Hono<FakeNeonEnv> {
  // Not strict: like the hand-written matcher this replaces, a trailing slash still matches.
  const app = new Hono<FakeNeonEnv>({ strict: false });
  app.onError(answerError);
  app.use(recordCalls(calls), async function provideStore(c, next) {
    c.set("state", state);
    c.set("databaseFor", databaseFor);
    await next();
  });
  const auth = requireApiKey(apiKey);
  for (const route of NEON_ROUTES) {
    app.on(
      route.method,
      honoPath(route.template),
      routeTag(route),
      auth,
      injectFaults(faults),
      HANDLERS[route.operationId],
    );
  }
  for (const template of new Set(NEON_ROUTES.map((r) => r.template))) {
    app.all(honoPath(template), auth, (c) => neonError(c, 405, "not found"));
  }
  app.all("*", auth, (c) => neonError(c, 404, "not found"));
  return app;
}

/** Names the spec route for the middleware after it (call log, faults). */
function routeTag(route: NeonRoute): MiddlewareHandler<FakeNeonEnv> {
  return async function tagRoute(c, next) {
    c.set("route", route);
    await next();
  };
}

/** Neon API keys are bearer tokens; anything else is 401 before any other check. */
function requireApiKey(apiKey: string): MiddlewareHandler<FakeNeonEnv> {
  return async function checkApiKey(c, next) {
    if (c.req.header("authorization") !== `Bearer ${apiKey}`) return neonError(c, 401, "authentication required");
    await next();
  };
}
