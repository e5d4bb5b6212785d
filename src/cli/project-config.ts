/**
 * The project's own configuration, as the CLI, `npm run dev`, the benches and the deploy check read
 * it: wrangler.toml at the top of the clone (its vars, and those of a named environment such as
 * production) and the .dev.vars secrets that `npm run dev` writes. Both go through maintained
 * parsers, smol-toml and Node's `util.parseEnv` (the dotenv rules wrangler applies to .dev.vars
 * itself), so comments, quoting and tables mean here exactly what they mean to wrangler. Node only.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { parse } from "smol-toml";

export const projectRoot = join(import.meta.dirname, "..", "..");
export const wranglerConfigPath = join(projectRoot, "wrangler.toml");
export const devVarsPath = join(projectRoot, ".dev.vars");

/** Offline, quiet wrangler: no metrics, no cf fetch, no update check. */
export const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
} as const;

/** The keys of one wrangler environment that this project reads; wrangler validates the rest. */
export interface WranglerEnvironment {
  readonly vars?: Readonly<Record<string, unknown>>;
  readonly secrets?: { readonly required?: readonly string[] };
  readonly kv_namespaces?: readonly { readonly binding: string; readonly id?: string }[];
  readonly r2_buckets?: readonly { readonly binding: string; readonly bucket_name?: string }[];
  readonly queues?: {
    readonly producers?: readonly { readonly binding: string; readonly queue: string }[];
    readonly consumers?: readonly { readonly queue: string; readonly dead_letter_queue?: string }[];
  };
  readonly triggers?: { readonly crons?: readonly string[] };
}

/** wrangler.toml: the top level (local dev) and its named environments. */
export interface WranglerConfig extends WranglerEnvironment {
  readonly env?: Readonly<Record<string, WranglerEnvironment>>;
}

export function parseWranglerConfig(text: string): WranglerConfig {
  return parse(text) as WranglerConfig;
}

export function readWranglerConfig(path: string = wranglerConfigPath): WranglerConfig {
  return parseWranglerConfig(readFileSync(path, "utf8"));
}

/** An environment's vars as the Worker sees them: strings, and JSON for structured values. */
export function varsOf(environment: WranglerEnvironment | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(environment?.vars ?? {}).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );
}

/** The vars of wrangler.toml: the top level, or the named environment's (they are not inherited). */
export function wranglerVars(env?: string, config: WranglerConfig = readWranglerConfig()): Record<string, string> {
  return varsOf(env === undefined ? config : config.env?.[env]);
}

export function parseDevVars(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseEnv(text))) if (value !== undefined) values[key] = value;
  return values;
}

export function readDevVars(): Record<string, string> {
  return existsSync(devVarsPath) ? parseDevVars(readFileSync(devVarsPath, "utf8")) : {};
}
