/**
 * Local configuration shared by `npm run dev`, the CLI and benches: .dev.vars secrets and the
 * vars declared in wrangler.jsonc. Dev-only.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateKey } from "../shared/crypto/secrets.ts";

export const projectRoot = join(import.meta.dirname, "..", "..");
export const devVarsPath = join(projectRoot, ".dev.vars");

/** Offline, quiet wrangler: no metrics, no cf fetch, no update check. */
export const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
} as const;

export function parseDotenv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (match?.[1] && match[2] !== undefined) values[match[1]] = match[2].replace(/^"(.*)"$/, "$1");
  }
  return values;
}

export function readDevVars(): Record<string, string> {
  return existsSync(devVarsPath) ? parseDotenv(readFileSync(devVarsPath, "utf8")) : {};
}

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

/** The `vars` block of wrangler.jsonc (comments stripped). */
export function wranglerVars(): Record<string, string> {
  const text = readFileSync(join(projectRoot, "wrangler.jsonc"), "utf8")
    .split("\n")
    .filter((line) => !line.trim().startsWith("//"))
    .join("\n");
  const config = JSON.parse(text) as { vars?: Record<string, string> };
  return config.vars ?? {};
}
