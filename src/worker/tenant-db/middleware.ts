/**
 * One `drizzle(neon(url))` per request, bound to the resolved tenant's own database: nothing is
 * shared across requests or tenants, so no code path can reach another tenant's data. That is
 * HTTP, one query or one batch at a time; code that needs a session (an interactive transaction,
 * `SELECT … FOR UPDATE` then decide) takes a `Pool` from `tenantPool` (pool.ts) instead.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import { createMiddleware } from "hono/factory";
import { setMetric } from "hono/timing";
import { decryptSecret, type KeyRing, parseKeyRing, tenantAad } from "../../shared/crypto/secrets.ts";
import { AppError } from "../../shared/errors.ts";
import { applyLocalNeon } from "../../shared/neon-local.ts";
import { TtlLru } from "../edge/lru.ts";
import type { AppEnv } from "../types.ts";

let endpointConfigured = false;
/**
 * The driver's endpoints (`fetchEndpoint`, `wsProxy` and its companions) are per isolate: set them
 * once, and only when the gateway is configured. Without `wsProxy` the WebSocket endpoint is
 * derived from `endpoint` (shared/neon-local.ts).
 */
export function configureEndpoint(endpoint: string | undefined, wsProxy?: string): void {
  if (endpointConfigured) return;
  endpointConfigured = true;
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: endpoint, NEON_WS_PROXY: wsProxy });
}

let ring: { secret: string; ring: KeyRing } | undefined;
function keyRing(secret: string): KeyRing {
  if (ring?.secret !== secret) ring = { secret, ring: parseKeyRing(secret) };
  return ring.ring;
}

/** Decrypted connection strings, decrypted once per isolate (keyed by tenant id and ciphertext). */
const plaintexts = new TtlLru<string>(5_000);
const PLAINTEXT_TTL_MS = 10 * 60_000;

export async function tenantConnectionString(
  env: Env,
  tenantId: string,
  ciphertext: string,
): Promise<string | undefined> {
  const key = `${tenantId}\u0000${ciphertext}`;
  const cached = plaintexts.get(key);
  if (cached !== undefined) return cached;
  const result = await decryptSecret(keyRing(env.DB_ENCRYPTION_KEYS), ciphertext, tenantAad(tenantId));
  if (!result.ok) return undefined;
  plaintexts.set(key, result.plaintext, PLAINTEXT_TTL_MS);
  return result.plaintext;
}

export function tenantDatabase() {
  return createMiddleware<AppEnv>(async function tenantDatabaseMiddleware(c, next) {
    configureEndpoint(c.env.NEON_FETCH_ENDPOINT);
    const tenant = c.get("tenant");
    let url: string | undefined;
    try {
      url = await tenantConnectionString(c.env, tenant.id, tenant.db);
    } catch (error) {
      c.get("log").log("error", "encryption_keys_invalid", { error: error instanceof Error ? error.name : "error" });
      throw new AppError(500, "internal_error");
    }
    if (!url) {
      // A ciphertext that does not decrypt under this tenant's id: tampered, or moved from another record.
      c.get("log").log("error", "tenant_record_integrity_failure", {});
      throw new AppError(500, "tenant_unavailable", "This tenant's configuration could not be verified.");
    }
    const timeoutMs = Number(c.env.DB_TIMEOUT_MS) || 10_000;
    const sql = neon(url, { fetchOptions: { signal: AbortSignal.timeout(timeoutMs) } });
    c.set("db", drizzle({ client: sql }));
    const started = performance.now();
    try {
      await next();
    } finally {
      setMetric(c, "db", performance.now() - started);
    }
  });
}
