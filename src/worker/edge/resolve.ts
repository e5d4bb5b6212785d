/**
 * Host → tenant record: per-isolate bounded caches first, KV only on a miss. Found records are
 * cached for TENANT_TTL_MS and "not found" for the shorter NEGATIVE_TTL_MS, so a new tenant appears
 * quickly and a flood of unknown hosts cannot turn into a flood of KV reads. The two live in
 * separate caches: unknown hosts are free for anyone to invent, and if their entries shared one
 * LRU with the tenants', a scan of random hosts would evict every cached tenant and turn each
 * real request into a KV read (issue 16). A single label below the platform domain that is not a
 * valid slug cannot name a tenant and is answered without any read.
 */

import { KV_CACHE_TTL_S, TENANT_TTL_MS } from "../../shared/edge-cache.ts";
import { classifyPlatformHost } from "../../shared/host.ts";
import { hostKey, parseTenantRecord, slugKey, type TenantRecord } from "../../shared/tenant-record.ts";
import { TtlLru } from "./lru.ts";

export const NEGATIVE_TTL_MS = 5_000;
const TENANT_ENTRIES = 5_000;
/** Enough to absorb retries and typos; a scan beyond it only costs KV reads, never tenants. */
const NEGATIVE_ENTRIES = 1_000;

const found = new TtlLru<TenantRecord>(TENANT_ENTRIES);
const missing = new TtlLru<true>(NEGATIVE_ENTRIES);

export interface Resolution {
  readonly tenant: TenantRecord | null;
  /**
   * Where the answer came from, for Server-Timing and the KV-reads benchmark: `rule` when the host
   * cannot name a tenant at all.
   */
  readonly source: "cache" | "kv" | "rule";
}

/** The KV key for a normalised host: platform subdomains go through `slug:`; `undefined` when no key can match. */
export function kvKeyFor(host: string, platformDomain: string): string | undefined {
  const platform = classifyPlatformHost(host, platformDomain);
  if (platform.kind === "slug") return slugKey(platform.slug);
  if (platform.kind === "invalid_slug") return undefined;
  return hostKey(host);
}

export async function resolveTenant(kv: KVNamespace, host: string, platformDomain: string): Promise<Resolution> {
  const key = kvKeyFor(host, platformDomain);
  if (key === undefined) return { tenant: null, source: "rule" };
  const cached = found.get(key);
  if (cached !== undefined) return { tenant: cached, source: "cache" };
  if (missing.get(key)) return { tenant: null, source: "cache" };
  // Read as text: `type: "json"` throws on a value that is not JSON, which would be a 500.
  const text = await kv.get(key, { type: "text", cacheTtl: KV_CACHE_TTL_S });
  // A record we cannot parse is treated as absent: never serve from a half-understood record.
  const tenant = text === null ? null : (parseTenantRecord(parseJson(text)) ?? null);
  if (tenant) {
    missing.delete(key);
    found.set(key, tenant, TENANT_TTL_MS);
  } else {
    found.delete(key);
    missing.set(key, true, NEGATIVE_TTL_MS);
  }
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
  found.clear();
  missing.clear();
}
