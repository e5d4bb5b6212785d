/**
 * `tenantry token`: dev tokens minted from the secrets in .dev.vars (or the environment). Capped at
 * one day: a dev token that leaks should not outlive the afternoon it was made for.
 */
import { ALL_ADMIN_SCOPES, mintAdminToken, mintTenantToken } from "../shared/tokens.ts";
import { parse, positiveInt, UsageError } from "./args.ts";
import { configVar, devSecret } from "./session.ts";

export const MAX_DEV_TOKEN_SECONDS = 86_400;
const SLUG = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;
/** A space-separated list of scope names (`catalog:write`, `tenants:read tenants:write`). */
const SCOPES = /^[A-Za-z0-9_:.-]+( [A-Za-z0-9_:.-]+)*$/;

function needSecret(name: string): string {
  const secret = devSecret(name);
  if (!secret) throw new Error(`no ${name}: run \`npm run dev\` once (it writes .dev.vars) or set ${name}`);
  return secret;
}

export async function tokenCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {
    tenant: { type: "string" },
    admin: { type: "boolean", default: false },
    scope: { type: "string" },
    sub: { type: "string" },
    ttl: { type: "string", default: "3600" },
  });
  const ttlSeconds = positiveInt(values.ttl, "--ttl (seconds)", MAX_DEV_TOKEN_SECONDS) ?? 3600;
  if (values.scope !== undefined && !SCOPES.test(values.scope)) {
    throw new UsageError('--scope takes scope names separated by single spaces, e.g. "catalog:write"');
  }
  let jwt: string;
  let label: string;
  if (values.admin) {
    const scope = values.scope ?? ALL_ADMIN_SCOPES;
    jwt = await mintAdminToken({
      secret: needSecret("ADMIN_JWT_SECRET"),
      issuer: configVar("ADMIN_JWT_ISSUER"),
      audience: configVar("ADMIN_JWT_AUDIENCE"),
      sub: values.sub ?? "dev-admin",
      scope,
      ttlSeconds,
    });
    label = `admin token (${scope})`;
  } else {
    const tenant = values.tenant;
    if (tenant === undefined || !SLUG.test(tenant)) {
      throw new UsageError("--tenant SLUG is required (lowercase letters, digits and dashes), or --admin");
    }
    const sub = values.sub ?? "dev-user";
    jwt = await mintTenantToken({
      secret: needSecret("JWT_SECRET"),
      issuer: configVar("JWT_ISSUER"),
      audience: configVar("JWT_AUDIENCE"),
      tenant,
      sub,
      ttlSeconds,
      ...(values.scope === undefined ? {} : { scope: values.scope }),
    });
    label = `token for tenant ${tenant}, subject ${sub}${values.scope === undefined ? "" : ` (${values.scope})`}`;
  }
  if (values.json) console.log(JSON.stringify({ token: jwt, expiresIn: ttlSeconds }));
  else {
    console.error(`${label}, valid ${ttlSeconds} s:`);
    console.log(jwt);
  }
}
