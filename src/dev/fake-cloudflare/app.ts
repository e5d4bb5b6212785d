/**
 * The fake Cloudflare API: the custom hostname endpoints the control plane uses
 * (https://developers.cloudflare.com/api/resources/custom_hostnames/), in Cloudflare's envelope
 * (`{success, errors, messages, result, result_info}`), behind `Authorization: Bearer <token>`.
 * Controls for tests: the call log, fault injection (`failNext`), deleting or moving a hostname on
 * "Cloudflare's side", the quota.
 */
import { type Context, Hono } from "hono";
import { addHostname, createFakeCloudflareState, type FakeCloudflareStateOptions, render } from "./state.ts";

export interface FakeCloudflareAppOptions extends FakeCloudflareStateOptions {
  /** The only token accepted; default `fake-cloudflare-token`. */
  readonly apiToken?: string;
}

export interface FakeCloudflareControls {
  readonly apiToken: string;
  /** `METHOD /path` of every request, in order. */
  readonly calls: string[];
  /** The next `times` requests whose `METHOD path` contains `match` fail with `status`. */
  failNext(match: string, status: number, times?: number): void;
  /** Host names the zone holds right now. */
  hostnames(): string[];
  /** Simulates Cloudflare's side: the hostname is deleted, or moved / blocked. */
  drop(hostname: string): void;
  force(hostname: string, status: "moved" | "blocked"): void;
  /** Creates custom hostnames directly (fleet-sized fixtures); returns their ids in order. */
  adopt(hostnames: readonly string[]): string[];
  setQuota(allocated: number): void;
  setActivateAfter(ms: number): void;
}

export interface FakeCloudflareApp extends FakeCloudflareControls {
  readonly app: Hono;
}

const envelope = (result: unknown, extra: Record<string, unknown> = {}) => ({
  success: true,
  errors: [],
  messages: [],
  result,
  ...extra,
});
const failure = (c: Context, status: 400 | 401 | 404 | 409, code: number, message: string) =>
  c.json({ success: false, errors: [{ code, message }], messages: [], result: null }, status);

/** Call log, bearer token (401 first, as Cloudflare does), then injected faults. */
function guard(apiToken: string, calls: string[], faults: { match: string; status: number; times: number }[]) {
  return async function guardRequest(c: Context, next: () => Promise<void>) {
    const path = new URL(c.req.url).pathname;
    calls.push(`${c.req.method} ${path}`);
    if (c.req.header("authorization") !== `Bearer ${apiToken}`) return failure(c, 401, 10000, "Authentication error");
    const fault = faults.find((f) => `${c.req.method} ${path}`.includes(f.match) && f.times > 0);
    if (fault) {
      fault.times -= 1;
      return c.json(
        { success: false, errors: [{ code: 10000 + fault.status, message: "injected" }] },
        fault.status as 500,
      );
    }
    await next();
  };
}

export function createFakeCloudflareApp(options: FakeCloudflareAppOptions = {}): FakeCloudflareApp {
  const apiToken = options.apiToken ?? "fake-cloudflare-token";
  const state = createFakeCloudflareState(options);
  const calls: string[] = [];
  const faults: { match: string; status: number; times: number }[] = [];
  const byName = (hostname: string) => [...state.hostnames.values()].find((e) => e.hostname === hostname);
  const app = new Hono().basePath("/client/v4/zones/:zone/custom_hostnames");

  app.use(guard(apiToken, calls, faults));
  app.get("/quota", (c) => c.json(envelope({ allocated: state.allocated, used: state.hostnames.size })));
  app.get("/fallback_origin", (c) => c.json(envelope({ origin: state.fallbackOrigin, status: "active", errors: [] })));
  app.get("/", (c) => {
    const page = Math.max(1, Number(c.req.query("page") ?? 1));
    const perPage = Math.min(50, Math.max(5, Number(c.req.query("per_page") ?? 20)));
    const all = [...state.hostnames.values()];
    const items = all.slice((page - 1) * perPage, page * perPage).map((e) => render(state, e));
    const info = { page, per_page: perPage, count: items.length, total_count: all.length };
    return c.json(envelope(items, { result_info: { ...info, total_pages: Math.ceil(all.length / perPage) } }));
  });
  app.post("/", async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as {
      hostname?: string;
      ssl?: { method?: string; type?: string };
      custom_metadata?: Record<string, string>;
    };
    if (!body.hostname || body.ssl?.type !== "dv") return failure(c, 400, 1409, "Invalid custom hostname or ssl.");
    if (byName(body.hostname)) return failure(c, 409, 1406, "Duplicate custom hostname found.");
    if (state.hostnames.size >= state.allocated) return failure(c, 400, 1414, "Quota exceeded.");
    const entry = addHostname(state, body.hostname, body.ssl.method ?? "txt", body.custom_metadata ?? {});
    return c.json(envelope(render(state, entry)));
  });
  app.get("/:id", (c) => {
    const entry = state.hostnames.get(c.req.param("id"));
    return entry ? c.json(envelope(render(state, entry))) : failure(c, 404, 1436, "Custom hostname not found.");
  });
  app.patch("/:id", (c) => {
    const entry = state.hostnames.get(c.req.param("id"));
    if (!entry) return failure(c, 404, 1436, "Custom hostname not found.");
    entry.validatedFrom = state.now();
    return c.json(envelope(render(state, entry)));
  });
  app.delete("/:id", (c) => {
    const id = c.req.param("id");
    if (!state.hostnames.delete(id)) return failure(c, 404, 1436, "Custom hostname not found.");
    return c.json(envelope({ id }));
  });

  return {
    app,
    apiToken,
    calls,
    failNext: (match, status, times = 1) => faults.push({ match, status, times }),
    hostnames: () => [...state.hostnames.values()].map((e) => e.hostname),
    drop(hostname) {
      const entry = byName(hostname);
      if (entry) state.hostnames.delete(entry.id);
    },
    force(hostname, status) {
      const entry = byName(hostname);
      if (entry) entry.forced = status;
    },
    adopt: (hostnames) => hostnames.map((hostname) => addHostname(state, hostname, "txt", {}).id),
    setQuota(allocated) {
      state.allocated = allocated;
    },
    setActivateAfter(ms) {
      state.activateAfterMs = ms;
    },
  };
}
