/** Helpers for tests that run inside workerd: seed KV, call the Worker, mint tokens. */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import { mintTenantToken } from "../../src/shared/tokens.ts";
import { purgeTenantCache } from "../../src/worker/edge/resolve.ts";
import worker from "../../src/worker/index.ts";

export const tenants = () => inject("tenants");

export function tenant(slug: string) {
  const found = tenants().find((t) => t.slug === slug);
  if (!found) throw new Error(`no seeded tenant ${slug}`);
  return found;
}

/** Writes every seeded tenant's KV records and forgets cached resolutions. */
export async function seedKv(): Promise<void> {
  for (const t of tenants()) for (const { key, value } of t.kv) await env.TENANTS.put(key, value);
  purgeTenantCache();
}

/**
 * Calls the Worker in this isolate. `token` sets `Authorization: Bearer`; `env` overrides bindings
 * for this one request (e.g. `{ LOG_LEVEL: "debug" }`) on top of the test environment.
 */
export async function call(
  url: string,
  init: RequestInit & { token?: string; env?: Partial<Env> } = {},
): Promise<Response> {
  const { token, env: overrides, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(url, { ...rest, headers }),
    overrides ? { ...env, ...overrides } : env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

export function token(tenantSlug: string, sub = "alice", overrides: { ttlSeconds?: number } = {}): Promise<string> {
  return mintTenantToken({
    secret: env.JWT_SECRET,
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    tenant: tenantSlug,
    sub,
    ...overrides,
  });
}

export const json = (body: unknown): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});
