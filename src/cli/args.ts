/**
 * Argument parsing and output shared by every `tenantry` command: node:util's parseArgs with a
 * `--json` flag on every command, usage errors (exit code 2), and JSON-or-human output.
 */
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/** A mistake in the command line: reported with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const JSON_FLAG = { json: { type: "boolean", default: false } } as const;

/** Parses a command's arguments; every command takes `--json`. */
export function parse<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  return parseArgs({ args, allowPositionals: true, strict: true, options: { ...JSON_FLAG, ...options } });
}

/** The result as JSON with `--json`, else the human rendering. */
export function output<T>(values: { json?: boolean | undefined }, data: T, human: (data: T) => void): void {
  if (values.json) console.log(JSON.stringify(data, null, 2));
  else human(data);
}

export function needSlug(positionals: string[], what: string): string {
  const slug = positionals[0];
  if (!slug) throw new UsageError(`${what} needs a tenant SLUG`);
  return slug;
}

/** A positive whole number option, or undefined when absent. */
export function positiveInt(
  value: string | undefined,
  flag: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} must be a whole number from 1 to ${max}`);
  return n;
}
