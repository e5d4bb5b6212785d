/**
 * `npm run deploy:check`: is the production configuration deployable? Offline, so CI can run it on
 * every change (it is part of `npm test`). wrangler bundles the Worker exactly as
 * `wrangler deploy --env production` would (`--dry-run`, nothing uploaded); then the pure checks
 * below read wrangler.toml's [env.production]: a named environment inherits no bindings, vars or
 * secrets, so each must be repeated there, and the secrets the chosen settings need must be listed
 * in `secrets.required` (wrangler then refuses a deploy while one is unset). Finally the bundle's
 * gzipped size is compared with the Workers limit (3 MB compressed on the free plan, 10 MB paid:
 * https://developers.cloudflare.com/workers/platform/limits/#worker-size).
 *
 * Values still reading REPLACE_WITH_… are reported; `--strict` makes them an error (run it before a
 * real deploy, docs/deploy.md). `--env NAME` checks another environment, `--plan paid` the 10 MB limit.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import {
  projectRoot,
  readWranglerConfig,
  varsOf,
  WRANGLER_ENV,
  type WranglerConfig,
  type WranglerEnvironment,
} from "../src/cli/project-config.ts";

export const PLACEHOLDER = "REPLACE_WITH_";

/** Workers size limits, compressed (gzip). */
export const SIZE_LIMITS = { free: 3 * 1024 * 1024, paid: 10 * 1024 * 1024 } as const;
export type Plan = keyof typeof SIZE_LIMITS;

/** Vars the Worker cannot serve without: hosts, token issuers and audiences, the provisioner. */
export const REQUIRED_VARS = [
  "PLATFORM_DOMAIN",
  "ADMIN_HOST",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
  "ADMIN_JWT_ISSUER",
  "ADMIN_JWT_AUDIENCE",
  "DEFAULT_PROVISIONER",
] as const;

/** Secrets every deployment needs, whatever its settings (see docs/deploy.md for each). */
export const ALWAYS_REQUIRED_SECRETS = ["DB_ENCRYPTION_KEYS", "CONTROL_DATABASE_URL", "EXPORT_SIGNING_KEY"] as const;

export interface DeployReport {
  /** What makes the deploy wrong or impossible. */
  readonly problems: readonly string[];
  /** Dotted paths whose value is still a REPLACE_WITH_ placeholder. */
  readonly placeholders: readonly string[];
}

const names = <T>(items: readonly T[] | undefined, name: (item: T) => string) => (items ?? []).map(name).sort();

/** Every dotted path under `value` whose string holds a placeholder. */
function placeholdersIn(value: unknown, path: string): string[] {
  if (typeof value === "string") return value.includes(PLACEHOLDER) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((item, index) => placeholdersIn(item, `${path}[${index}]`));
  if (typeof value === "object" && value !== null)
    return Object.entries(value).flatMap(([key, item]) => placeholdersIn(item, `${path}.${key}`));
  return [];
}

/** The bindings a named environment must repeat: the top level's, by binding name. */
function bindingProblems(top: WranglerEnvironment, env: WranglerEnvironment, where: string): string[] {
  const problems: string[] = [];
  const compare = (kind: string, expected: string[], actual: string[]) => {
    for (const name of expected) if (!actual.includes(name)) problems.push(`${where}: ${kind} ${name} is not declared`);
  };
  compare(
    "KV namespace",
    names(top.kv_namespaces, (kv) => kv.binding),
    names(env.kv_namespaces, (kv) => kv.binding),
  );
  compare(
    "R2 bucket",
    names(top.r2_buckets, (r2) => r2.binding),
    names(env.r2_buckets, (r2) => r2.binding),
  );
  const producers = (e: WranglerEnvironment) => names(e.queues?.producers, (q) => q.binding);
  compare("queue producer", producers(top), producers(env));
  const consumers = (e: WranglerEnvironment) => names(e.queues?.consumers, (q) => q.queue);
  compare("queue consumer of", consumers(top), consumers(env));
  for (const consumer of env.queues?.consumers ?? []) {
    if (!consumer.dead_letter_queue)
      problems.push(`${where}: the consumer of ${consumer.queue} has no dead_letter_queue`);
  }
  return problems;
}

/** The secrets these vars make necessary: token secrets only without a JWKS, provisioners' and Cloudflare's keys when used. */
export function requiredSecrets(vars: Readonly<Record<string, string>>): string[] {
  const provisioner = vars.DEFAULT_PROVISIONER;
  const regions = (vars.LOCAL_REGIONS ?? "").split(",").filter((region) => region.trim());
  const secrets: string[] = [...ALWAYS_REQUIRED_SECRETS];
  if (!vars.JWKS_URL) secrets.push("JWT_SECRET");
  if (!vars.ADMIN_JWKS_URL) secrets.push("ADMIN_JWT_SECRET");
  if (provisioner === "neon" || neonRegions(vars.NEON_PROJECTS).length > 0) secrets.push("NEON_API_KEY");
  if (provisioner === "local" || regions.length > 0) secrets.push("LOCAL_PROVISIONER_URL");
  if (vars.CLOUDFLARE_ZONE_ID) secrets.push("CLOUDFLARE_API_TOKEN");
  return secrets;
}

function neonRegions(projects: string | undefined): string[] {
  try {
    const parsed = JSON.parse(projects || "{}") as unknown;
    return typeof parsed === "object" && parsed !== null ? Object.keys(parsed) : [];
  } catch {
    return [];
  }
}

function varProblems(topVars: Record<string, string>, vars: Record<string, string>, where: string): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(topVars)) {
    if (!(name in vars)) problems.push(`${where}.vars: ${name} is not declared (vars are not inherited)`);
  }
  for (const name of REQUIRED_VARS) if (name in vars && !vars[name]) problems.push(`${where}.vars: ${name} is empty`);
  // Set, it would send every tenant's queries to a dev gateway instead of Neon.
  if (vars.NEON_FETCH_ENDPOINT) problems.push(`${where}.vars: NEON_FETCH_ENDPOINT must be empty in production`);
  const provisioner = vars.DEFAULT_PROVISIONER;
  if (provisioner && !["local", "neon", "url"].includes(provisioner)) {
    problems.push(`${where}.vars: DEFAULT_PROVISIONER must be local, neon or url, not ${provisioner}`);
  }
  try {
    const projects = JSON.parse(vars.NEON_PROJECTS || "{}") as unknown;
    if (typeof projects !== "object" || projects === null || Array.isArray(projects)) throw new Error("not an object");
    if (provisioner === "neon" && Object.keys(projects).length === 0) {
      problems.push(`${where}.vars: DEFAULT_PROVISIONER is neon but NEON_PROJECTS names no region`);
    }
  } catch {
    problems.push(`${where}.vars: NEON_PROJECTS is not a JSON object of region → {projectId, templateBranchId}`);
  }
  return problems;
}

/** Checks one named environment of wrangler.toml against the top level and the Worker's needs. */
export function checkDeployConfig(config: WranglerConfig, envName: string): DeployReport {
  const where = `[env.${envName}]`;
  const env = config.env?.[envName];
  if (!env) return { problems: [`wrangler.toml has no ${where} section`], placeholders: [] };
  const vars = varsOf(env);
  const declared = env.secrets?.required ?? [];
  const problems = [
    ...bindingProblems(config, env, where),
    ...varProblems(varsOf(config), vars, where),
    ...requiredSecrets(vars)
      .filter((secret) => !declared.includes(secret))
      .map((secret) => `${where}.secrets.required: ${secret} is needed with these vars but not declared`),
  ];
  return { problems, placeholders: placeholdersIn(env, `env.${envName}`) };
}

/** The gzipped bundle against the plan's limit; a problem when over it. */
export function checkBundleSize(gzipBytes: number, plan: Plan): { line: string; problem?: string } {
  const limit = SIZE_LIMITS[plan];
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  const line = `bundle: ${mib(gzipBytes)} gzipped, ${((gzipBytes / limit) * 100).toFixed(1)}% of the ${plan} plan's ${mib(limit)} limit`;
  return gzipBytes > limit ? { line, problem: `the bundle is over the ${plan} plan's limit` } : { line };
}

/** `wrangler deploy --dry-run` into a temporary folder; the gzipped size of what it would upload. */
function bundle(envName: string): number {
  const outdir = mkdtempSync(join(tmpdir(), "tenantry-deploy-check-"));
  try {
    const result = spawnSync(
      process.execPath,
      [
        join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js"),
        "deploy",
        "--dry-run",
        "--env",
        envName,
        "--outdir",
        outdir,
      ],
      { cwd: projectRoot, env: { ...process.env, ...WRANGLER_ENV }, encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${result.stdout}${result.stderr}`);
    const files = readdirSync(outdir).filter((file) => file.endsWith(".js") || file.endsWith(".mjs"));
    return files.reduce((total, file) => total + gzipSync(readFileSync(join(outdir, file))).length, 0);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      env: { type: "string", default: "production" },
      plan: { type: "string", default: "free" },
      strict: { type: "boolean", default: false },
    },
  });
  const plan = values.plan === "paid" ? "paid" : "free";
  const report = checkDeployConfig(readWranglerConfig(), values.env);
  const size = report.problems.length === 0 ? checkBundleSize(bundle(values.env), plan) : undefined;
  const problems = [...report.problems, ...(size?.problem ? [size.problem] : [])];
  if (size) console.log(`deploy:check [env.${values.env}] ${size.line}`);
  if (report.placeholders.length > 0) {
    const label = values.strict ? "error" : "to fill before deploying (docs/deploy.md)";
    console.log(`placeholders, ${label}:\n${report.placeholders.map((path) => `  ${path}`).join("\n")}`);
    if (values.strict) problems.push(`${report.placeholders.length} placeholder value(s) left`);
  }
  for (const problem of problems) console.error(`✘ ${problem}`);
  if (problems.length > 0) process.exit(1);
  console.log("deploy:check ok");
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
