/**
 * The fake Neon API (`app.ts`) served on a local port, for clients that need a URL: the `neon`
 * provisioner's `@neondatabase/api-client` (axios) in tests, and dev tooling.
 */
import { serveApp } from "../serve-app.ts";
import { createFakeNeonApp, type FakeNeonAppOptions, type FakeNeonControls } from "./app.ts";

export interface FakeNeonOptions extends FakeNeonAppOptions {
  /** Listen port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
}

export interface FakeNeon extends FakeNeonControls {
  /** Base URL for `createApiClient({ baseURL })`, e.g. `http://127.0.0.1:1234/api/v2`. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startFakeNeonApi(options: FakeNeonOptions = {}): Promise<FakeNeon> {
  const { app, ...controls } = createFakeNeonApp(options);
  const served = await serveApp(app.fetch, options.port ?? 0);
  return { ...controls, url: `http://127.0.0.1:${served.port}/api/v2`, close: served.close };
}
