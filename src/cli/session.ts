/**
 * Who the CLI is to the admin API: TENANTRY_ADMIN_TOKEN when set, else (in a dev clone) a
 * short-lived admin token minted from the ADMIN_JWT_SECRET in .dev.vars.
 */

import { ALL_ADMIN_SCOPES, mintAdminToken } from "../shared/tokens.ts";
import { type AdminClient, createAdminClient } from "./admin-client.ts";
import { readDevVars, wranglerVars } from "./project-config.ts";

/** A secret from the environment, else from the clone's .dev.vars. */
export function devSecret(name: string): string | undefined {
  return process.env[name] ?? readDevVars()[name];
}

/** A var from the environment, else from wrangler's config. */
export function configVar(name: string): string {
  return process.env[name] ?? wranglerVars()[name] ?? "";
}

async function adminToken(): Promise<string> {
  if (process.env.TENANTRY_ADMIN_TOKEN) return process.env.TENANTRY_ADMIN_TOKEN;
  const secret = devSecret("ADMIN_JWT_SECRET");
  if (!secret)
    throw new Error("no admin token: set TENANTRY_ADMIN_TOKEN (or run `npm run dev` once, which writes .dev.vars)");
  const vars = wranglerVars();
  return mintAdminToken({
    secret,
    issuer: vars.ADMIN_JWT_ISSUER ?? "",
    audience: vars.ADMIN_JWT_AUDIENCE ?? "",
    sub: `cli:${process.env.USER ?? "operator"}`,
    scope: ALL_ADMIN_SCOPES,
    ttlSeconds: 300,
  });
}

/** The admin API client; `timeoutMs` is how long an answer may take (see createAdminClient). */
export async function client(timeoutMs?: number): Promise<AdminClient> {
  return createAdminClient(process.env.TENANTRY_URL ?? "http://admin.localhost:8787", await adminToken(), timeoutMs);
}
