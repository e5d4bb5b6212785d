/**
 * The fake Cloudflare API's store and its simulation of the customer's DNS: a custom hostname turns
 * active (hostname and certificate) `activateAfterMs` after it was created or re-validated, except a
 * hostname under `.invalid` (RFC 2606: never resolves), which stays pending with a validation error.
 */
import { randomUUID } from "node:crypto";
import type { CustomHostname } from "../../control/domains/cloudflare.ts";

export interface FakeCloudflareStateOptions {
  /** Delay from creation (or PATCH) to active; default 5 s. */
  readonly activateAfterMs?: number;
  /** Custom hostnames allowed on the zone (the quota); default 100. */
  readonly allocated?: number;
  /** The zone's fallback origin, the CNAME target; default `customers.tenantry.localhost`. */
  readonly fallbackOrigin?: string;
  readonly now?: () => number;
}

export interface FakeHostnameEntry {
  readonly id: string;
  readonly hostname: string;
  readonly method: string;
  readonly metadata: Record<string, string>;
  /** When validation last started (create or PATCH). */
  validatedFrom: number;
  /** Set by the test controls: `moved` or `blocked`, as Cloudflare would decide. */
  forced?: "moved" | "blocked" | undefined;
}

export interface FakeCloudflareState {
  readonly hostnames: Map<string, FakeHostnameEntry>;
  activateAfterMs: number;
  allocated: number;
  readonly fallbackOrigin: string;
  readonly now: () => number;
}

export function createFakeCloudflareState(options: FakeCloudflareStateOptions = {}): FakeCloudflareState {
  return {
    hostnames: new Map(),
    activateAfterMs: options.activateAfterMs ?? 5_000,
    allocated: options.allocated ?? 100,
    fallbackOrigin: options.fallbackOrigin ?? "customers.tenantry.localhost",
    now: options.now ?? Date.now,
  };
}

export function addHostname(
  state: FakeCloudflareState,
  hostname: string,
  method: string,
  metadata: Record<string, string>,
): FakeHostnameEntry {
  const entry: FakeHostnameEntry = { id: randomUUID(), hostname, method, metadata, validatedFrom: state.now() };
  state.hostnames.set(entry.id, entry);
  return entry;
}

/** The custom hostname as the API shows it right now. */
export function render(state: FakeCloudflareState, entry: FakeHostnameEntry): CustomHostname {
  const invalid = entry.hostname.endsWith(".invalid");
  const live = !invalid && !entry.forced && state.now() - entry.validatedFrom >= state.activateAfterMs;
  const token = entry.id.replaceAll("-", "");
  return {
    id: entry.id,
    hostname: entry.hostname,
    status: entry.forced ?? (live ? "active" : "pending"),
    ssl: {
      status: live ? "active" : "pending_validation",
      method: entry.method,
      validation_records: live
        ? []
        : [{ txt_name: `_acme-challenge.${entry.hostname}`, txt_value: `ca3-${token.slice(0, 16)}` }],
      validation_errors: invalid ? [{ message: "custom hostname does not CNAME to this zone." }] : [],
    },
    ownership_verification: { type: "txt", name: `_cf-custom-hostname.${entry.hostname}`, value: token },
    ownership_verification_http: {
      http_url: `http://${entry.hostname}/.well-known/cf-custom-hostname-challenge/${entry.id}`,
      http_body: token,
    },
    verification_errors: invalid ? ["custom hostname does not CNAME to this zone."] : [],
    custom_metadata: entry.metadata,
  };
}
