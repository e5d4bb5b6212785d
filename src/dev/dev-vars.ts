/**
 * The .dev.vars file `npm run dev` keeps for wrangler dev: the Worker's secrets, generated once and
 * then reused so tokens and encrypted KV records stay valid across runs, plus the stack's addresses.
 * Reading it (and wrangler.toml) is the CLI's business too, so that lives in src/cli/project-config.ts;
 * writing it is dev-only.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { devVarsPath, readDevVars } from "../cli/project-config.ts";
import { generateKey } from "../shared/crypto/secrets.ts";

/**
 * Makes sure .dev.vars holds the Worker's secrets (generated once, then kept so tokens and
 * encrypted KV records stay valid across runs) and the given extra vars; returns them all.
 */
export function ensureDevVars(extra: Record<string, string> = {}): Record<string, string> {
  const current = readDevVars();
  const values: Record<string, string> = {
    JWT_SECRET: current.JWT_SECRET ?? randomBytes(32).toString("hex"),
    ADMIN_JWT_SECRET: current.ADMIN_JWT_SECRET ?? randomBytes(32).toString("hex"),
    EXPORT_SIGNING_KEY: current.EXPORT_SIGNING_KEY ?? randomBytes(32).toString("hex"),
    CONSOLE_SESSION_SECRET: current.CONSOLE_SESSION_SECRET ?? randomBytes(32).toString("hex"),
    DB_ENCRYPTION_KEYS: current.DB_ENCRYPTION_KEYS ?? `k1:${generateKey()}`,
    // Declared required for deploys; empty here means "no Neon provisioner" (local databases only),
    // and keeps wrangler from warning about a missing secret on every start.
    NEON_API_KEY: current.NEON_API_KEY ?? "",
    ...current,
    ...extra,
  };
  const text = `# Local secrets and overrides for wrangler dev, written by \`npm run dev\`. Never commit this file.\n${Object.entries(
    values,
  )
    .map(([key, value]) => `${key}=${value}`)
    .join("\n")}\n`;
  writeFileSync(devVarsPath, text, { mode: 0o600 });
  return values;
}
