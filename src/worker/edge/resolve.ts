/**
 * Host → tenant record: per-isolate bounded cache first, KV only on a miss. Found records are cached
 * for TENANT_TTL_MS and "not found" for the shorter NEGATIVE_TTL_MS, so a new tenant appears quickly
 * and a flood of unknown hosts cannot turn into a flood of KV reads.
 */

import { platformSlug } from "../../shared/host.ts";
import { hostKey, parseTenantRecord, slugKey, type TenantRecord } from "../../shared/tenant-record.ts";
import { TtlLru } from "./lru.ts";

export const TENANT_TTL_MS = 30_000;
export const NEGATIVE_TTL_MS = 5_000;
const CACHE_ENTRIES = 5_000;
/** KV's own edge cache for hot keys (minimum allowed is 60 s). */
const KV_CACHE_TTL_S = 60;

const cache = new TtlLru<TenantRecord | null>(CACHE_ENTRIES);

export interface Resolution {
  readonly tenant: TenantRecord | null;
  /** Where the answer came from, for Server-Timing and the KV-reads benchmark. */
  readonly source: "cache" | "kv";
}

/** The KV key for a normalised host: platform subdomains go through `slug:`. */
export function kvKeyFor(host: string, platformDomain: string): string {
  const slug = platformDomain ? platformSlug(host, platformDomain) : undefined;
  return slug ? slugKey(slug) : hostKey(host);
}

export async function resolveTenant(kv: KVNamespace, host: string, platformDomain: string): Promise<Resolution> {
  const key = kvKeyFor(host, platformDomain);
  const cached = cache.get(key);
  if (cached !== undefined) return { tenant: cached, source: "cache" };
  // Read as text: `type: "json"` throws on a value that is not JSON, which would be a 500.
  const text = await kv.get(key, { type: "text", cacheTtl: KV_CACHE_TTL_S });
  // A record we cannot parse is treated as absent: never serve from a half-understood record.
  const tenant = text === null ? null : (parseTenantRecord(parseJson(text)) ?? null);
  cache.set(key, tenant, tenant ? TENANT_TTL_MS : NEGATIVE_TTL_MS);
  return { tenant, source: "kv" };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Drops cached resolutions in this isolate (tests, and the control plane after a change). */
export function purgeTenantCache(): void {
  cache.clear();
}
