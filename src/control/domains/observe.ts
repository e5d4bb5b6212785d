/**
 * Pure rules from a Cloudflare custom hostname to a domain's state: which state it is in (active
 * only when both the hostname and its certificate are), what the customer must publish, and whether
 * a change deserves an alert (once per condition, so a stuck domain is not re-alerted every cron).
 */
import type { DnsInstructions, DomainState } from "../schema.ts";
import type { CustomHostname } from "./cloudflare.ts";

export interface DomainObservation {
  readonly status: DomainState;
  readonly sslStatus: string | null;
  readonly validationErrors: string[];
  /** Present when the answer carries the records (create, PATCH, GET while pending). */
  readonly dns?: DnsInstructions;
}

/** `fallbackOrigin` given: the DNS instructions are included. */
export function observe(hostname: CustomHostname | undefined, fallbackOrigin?: string): DomainObservation {
  // Gone on Cloudflare's side (deleted there, or moved for 7 days): the edge must stop serving it.
  if (!hostname) return { status: "deleted", sslStatus: null, validationErrors: [] };
  const sslStatus = hostname.ssl?.status ?? null;
  // Ownership and certificate validation often fail for the same reason, worded the same: once each.
  const validationErrors = [
    ...new Set([
      ...(hostname.verification_errors ?? []),
      ...(hostname.ssl?.validation_errors ?? []).map((e) => e.message),
    ]),
  ];
  const live = (hostname.status === "active" || hostname.status === "active_redeploying") && sslStatus === "active";
  const status: DomainState =
    hostname.status === "moved" || hostname.status === "blocked" || hostname.status === "deleted"
      ? hostname.status
      : live
        ? "active"
        : "pending";
  return {
    status,
    sslStatus,
    validationErrors,
    ...(fallbackOrigin ? { dns: dnsInstructions(hostname, fallbackOrigin) } : {}),
  };
}

/** The condition an observation should be alerted on, or null when all is well (or just pending). */
export function alertCondition(seen: DomainObservation): string | null {
  if (seen.status === "moved" || seen.status === "blocked" || seen.status === "deleted") return seen.status;
  if (seen.status === "pending" && seen.validationErrors.length > 0) return "validation_failed";
  return null;
}

/** The records to paste into the customer's DNS zone, from the create (or PATCH) answer. */
export function dnsInstructions(hostname: CustomHostname, fallbackOrigin: string): DnsInstructions {
  const records: DnsInstructions["records"][number][] = [
    { type: "CNAME", name: hostname.hostname, value: fallbackOrigin },
  ];
  const own = hostname.ownership_verification;
  if (own?.name && own.value) records.push({ type: "TXT", name: own.name, value: own.value });
  for (const record of hostname.ssl?.validation_records ?? []) {
    if (record.txt_name && record.txt_value)
      records.push({ type: "TXT", name: record.txt_name, value: record.txt_value });
  }
  const http = hostname.ownership_verification_http;
  return {
    records,
    ...(http?.http_url && http.http_body ? { http: { url: http.http_url, body: http.http_body } } : {}),
  };
}
