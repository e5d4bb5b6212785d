/**
 * How long the edge may keep serving a tenant after its KV records change: the isolate cache of
 * tenant records (TENANT_TTL_MS), on top of KV's own edge cache for hot keys (KV_CACHE_TTL_S, the
 * minimum KV allows), plus a request already admitted and still running its queries (the default
 * DB_TIMEOUT_MS). The delete flow waits this long after taking a tenant off the edge before its
 * final export, so the export holds every write the edge acknowledged.
 */
export const TENANT_TTL_MS = 30_000;
export const KV_CACHE_TTL_S = 60;
export const REQUEST_MAX_MS = 10_000;
export const EDGE_STALE_MS = TENANT_TTL_MS + KV_CACHE_TTL_S * 1000 + REQUEST_MAX_MS;
