/**
 * Pointing `@neondatabase/serverless` at the local gateway instead of Neon, for both of its faces:
 * `neon()` over HTTP (`fetchEndpoint`) and `Pool`/`Client` over WebSockets (`wsProxy`). The
 * settings are module-wide in the driver, so they are decided once from two variables and applied
 * only when one of them is set: with neither, nothing changes and production talks to Neon.
 *
 * Against a plain Postgres behind the gateway the WebSocket is `ws://` (no TLS to terminate
 * locally), the Postgres protocol is not wrapped in TLS (`pipelineTLS`), and the first messages
 * are not pipelined (`pipelineConnect`), because that shortcut works only with cleartext password
 * authentication and local Postgres uses SCRAM. See the driver's CONFIG.md.
 */
import type { neonConfig } from "@neondatabase/serverless";

export interface LocalNeonVars {
  /** The gateway's HTTP endpoint, e.g. `http://127.0.0.1:4444/sql`. */
  readonly NEON_FETCH_ENDPOINT?: string | undefined;
  /** The gateway's WebSocket endpoint without scheme, e.g. `127.0.0.1:4444/v2`; derived when unset. */
  readonly NEON_WS_PROXY?: string | undefined;
}

export interface LocalNeonSettings {
  readonly fetchEndpoint: string | undefined;
  readonly wsProxy: string;
  readonly useSecureWebSocket: false;
  readonly pipelineTLS: false;
  readonly pipelineConnect: false;
}

/**
 * The WebSocket endpoint beside an HTTP endpoint: same host and port, `/v2` in place of `/sql`
 * (`http://127.0.0.1:4444/sql` → `127.0.0.1:4444/v2`). The driver wants no scheme here.
 */
export function wsProxyFor(fetchEndpoint: string): string {
  const url = new URL(fetchEndpoint);
  return `${url.host}${url.pathname.replace(/\/sql\/?$/, "").replace(/\/$/, "")}/v2`;
}

/** The driver settings for the local gateway, or undefined when neither variable is set. */
export function localNeonSettings(vars: LocalNeonVars): LocalNeonSettings | undefined {
  const fetchEndpoint = vars.NEON_FETCH_ENDPOINT || undefined;
  const explicit = vars.NEON_WS_PROXY?.replace(/^wss?:\/\//, "") || undefined;
  const wsProxy = explicit ?? (fetchEndpoint ? wsProxyFor(fetchEndpoint) : undefined);
  if (!wsProxy) return undefined;
  return { fetchEndpoint, wsProxy, useSecureWebSocket: false, pipelineTLS: false, pipelineConnect: false };
}

/** Applies `localNeonSettings(vars)` to the driver's config; returns whether anything was set. */
export function applyLocalNeon(config: typeof neonConfig, vars: LocalNeonVars): boolean {
  const settings = localNeonSettings(vars);
  if (!settings) return false;
  if (settings.fetchEndpoint) config.fetchEndpoint = settings.fetchEndpoint;
  config.wsProxy = settings.wsProxy;
  config.useSecureWebSocket = settings.useSecureWebSocket;
  config.pipelineTLS = settings.pipelineTLS;
  config.pipelineConnect = settings.pipelineConnect;
  return true;
}
