/**
 * The fake Cloudflare API (`app.ts`) on a local port: `npm run dev` points the Worker at it
 * (CLOUDFLARE_API_URL), and tests drive the real client against it.
 */
import { serveApp } from "../serve-app.ts";
import { createFakeCloudflareApp, type FakeCloudflareAppOptions, type FakeCloudflareControls } from "./app.ts";

export interface FakeCloudflareOptions extends FakeCloudflareAppOptions {
  /** Listen port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
}

export interface FakeCloudflare extends FakeCloudflareControls {
  /** Base URL for the client, e.g. `http://127.0.0.1:1234/client/v4`. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startFakeCloudflareApi(options: FakeCloudflareOptions = {}): Promise<FakeCloudflare> {
  const { app, ...controls } = createFakeCloudflareApp(options);
  const served = await serveApp(app.fetch, options.port ?? 0);
  return { ...controls, url: `http://127.0.0.1:${served.port}/client/v4`, close: served.close };
}
