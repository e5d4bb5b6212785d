/**
 * Helpers for tests that run inside workerd: seed KV, call the Worker, mint tokens, drive the cron
 * and fleet runs, reach a tenant's database.
 */
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { neon } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { expect, inject } from "vitest";
import type { FleetDeps } from "../../src/control/fleet/dispatch.ts";
import { type RunOptions, type RunProgress, startRun as startFleetRun } from "../../src/control/fleet/runs.ts";
import { tenants as tenantTable } from "../../src/control/schema.ts";
import { migrationAad } from "../../src/control/tenants/secrets.ts";
import { decryptSecret, parseKeyRing } from "../../src/shared/crypto/secrets.ts";
import { AppError } from "../../src/shared/errors.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken, mintTenantToken } from "../../src/shared/tokens.ts";
import { controlDepsFrom } from "../../src/worker/admin/deps.ts";
import { purgeTenantCache } from "../../src/worker/edge/resolve.ts";
import worker from "../../src/worker/index.ts";
import { configureEndpoint } from "../../src/worker/tenant-db/middleware.ts";

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

/** A tenant token; `scope` grants e.g. `catalog:write`, which creating products needs. */
export function token(
  tenantSlug: string,
  sub = "alice",
  overrides: { ttlSeconds?: number; scope?: string } = {},
): Promise<string> {
  return mintTenantToken({
    secret: env.JWT_SECRET as string,
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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** startRun's direct twin: the control plane's own startRun, waiting the same way. */
export async function startRunWhenFree(deps: FleetDeps, options: RunOptions): Promise<RunProgress> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      return await startFleetRun(deps, options);
    } catch (error) {
      if (!(error instanceof AppError && error.status === 409) || Date.now() > deadline) throw error;
      await sleep(1_000);
      await cron();
    }
  }
}

/** An admin API token (every scope unless given), as an operator's CLI holds one. */
export function adminToken(sub = "ops", scope: string = ALL_ADMIN_SCOPES): Promise<string> {
  return mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub,
    scope,
  });
}

/** The control plane's dependencies as the Worker builds them, the gateway endpoint configured. */
export function controlDeps(actor: string) {
  configureEndpoint(env.NEON_FETCH_ENDPOINT);
  return controlDepsFrom(env, actor);
}

/** A tenant's row in the control database; throws when there is none. */
export async function tenantRow(slug: string) {
  const [row] = await controlDeps("test").db.select().from(tenantTable).where(eq(tenantTable.slug, slug));
  if (!row) throw new Error(`no tenant ${slug}`);
  return row;
}

/** The tenant's migration (DDL) connection, decrypted as the fleet consumer does. */
export async function migrationSql(slug: string) {
  const row = await tenantRow(slug);
  const decrypted = await decryptSecret(
    parseKeyRing(env.DB_ENCRYPTION_KEYS),
    row.migrationSecret ?? "",
    migrationAad(row.id),
  );
  if (!decrypted.ok) throw new Error(`cannot decrypt ${slug}'s migration secret`);
  return neon(decrypted.plaintext);
}

/** One cron tick of the Worker (`scheduled`), waited for to the end. */
export async function cron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() }), env, ctx);
  await waitOnExecutionContext(ctx);
}

const ADMIN = "http://admin.localhost";

export async function getRun(token: string, id: string): Promise<RunProgress> {
  const response = await call(`${ADMIN}/v1/migrations/runs/${id}`, { token });
  expect(response.status).toBe(200);
  return (await response.json()) as RunProgress;
}

/** Starts a run; only one may run at a time, so it waits (pushing it with cron) while another file's is. */
export async function startRun(token: string, body: Record<string, unknown>): Promise<RunProgress> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await call(`${ADMIN}/v1/migrations/runs`, { ...json(body), token });
    const payload = (await response.json()) as RunProgress;
    if (response.status !== 409 || Date.now() > deadline) {
      expect(response.status, JSON.stringify(payload)).toBe(202);
      return payload;
    }
    await sleep(1_000);
    await cron();
  }
}

/** Cron + queue until the run stops running (completed or halted). */
export async function settle(token: string, id: string, ms = 150_000): Promise<RunProgress> {
  const deadline = Date.now() + ms;
  let run = await getRun(token, id);
  for (let tick = 1; run.status === "running"; tick++) {
    if (Date.now() > deadline) throw new Error(`run ${id} still running: ${JSON.stringify(run)}`);
    if (tick % 8 === 0) await cron();
    await sleep(250);
    run = await getRun(token, id);
  }
  return run;
}
