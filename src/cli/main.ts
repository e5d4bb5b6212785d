/**
 * `tenantry`: the operator CLI. Talks to the admin API at TENANTRY_URL (default
 * http://admin.localhost:8787) with TENANTRY_ADMIN_TOKEN; in a dev clone it mints an admin token from
 * .dev.vars itself. Human-readable tables by default, `--json` for scripts, non-zero exit on failure.
 */
import { parseArgs } from "node:util";
import type { KeyStatus, ReencryptReport } from "../control/keys.ts";
import type { TenantView } from "../control/tenants/rows.ts";
import { readDevVars, wranglerVars } from "../dev/config.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken, mintTenantToken } from "../shared/tokens.ts";
import { type AdminClient, ApiError, createAdminClient, UnreachableError } from "./admin-client.ts";
import { exportCommand, exportsCommand } from "./export.ts";
import { table } from "./format.ts";
import { migrateCommand } from "./migrate.ts";

const USAGE = `usage: tenantry <command> [options]

tenants
  tenants create SLUG --region REGION [--domain HOST]... [--plan PLAN]
                 [--provisioner local|neon|url] [--connection-string URL]
  tenants list [--status STATUS] [--region REGION] [--limit N]
  tenants show SLUG
  tenants suspend SLUG
  tenants resume SLUG
  tenants retry SLUG                 resume a failed or interrupted onboarding
  tenants delete SLUG --confirm SLUG drops the tenant's database for good
                 [--final-export]   export it to R2 first (the delete is refused if that fails)
domains
  domains add SLUG HOST
  domains remove SLUG HOST
operations
  reconcile                          repair drift between the control database and KV
  audit [--target SLUG|HOST] [--limit N]
encryption keys (DB_ENCRYPTION_KEYS rotation: new key first in the ring, deploy, reencrypt,
                 then remove the old key once \`keys\` shows none left under it)
  keys                               connection strings at rest per key id
  keys reencrypt [--batch N]         re-encrypt them all under the current key, N tenants per
                                     request (default 100); exit 1 if any could not be decrypted
migrations (run, rollback and resume wait with a progress bar unless --no-wait;
            exit 1 when the run halts, is cancelled or leaves failed tenants)
  migrate status                     schema versions across the fleet, tenants behind, latest run
  migrate run [--target NAME] [--canary N | --canary-tenant SLUG...] [--wave N]
              [--concurrency N] [--max-failures N] [--dry-run] [--no-wait]
  migrate rollback --steps N [same options as run, without --target]
  migrate show RUN_ID [--wait]
  migrate resume RUN_ID [--no-wait]  re-queue pending and failed tenants, continue
  migrate cancel RUN_ID              tenants not started yet are skipped
exports (gzip SQL dumps in R2; restore: gunzip -c FILE | psql -v ON_ERROR_STOP=1 -d DB)
  export SLUG [--wait] [--output FILE]
                                     queue one; --wait polls until done; --output (implies --wait)
                                     downloads it through a signed link and checks it
  exports list SLUG                  a tenant's exports (on demand, nightly, final), newest first
  exports show EXPORT_ID [--wait]
  exports download EXPORT_ID --output FILE
tokens
  token --tenant SLUG [--sub SUBJECT] [--ttl SECONDS]     tenant access token (dev)
  token --admin [--scope "tenants:read ..."] [--sub S]    admin token (dev)

Every command takes --json. Environment: TENANTRY_URL (default http://admin.localhost:8787),
TENANTRY_ADMIN_TOKEN (default: minted from .dev.vars in a dev clone).
`;

class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: Parameters<typeof parseArgs>[0]["options"]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false }, ...options },
  });
}

function devSecret(name: string): string | undefined {
  return process.env[name] ?? readDevVars()[name];
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

async function client(): Promise<AdminClient> {
  return createAdminClient(process.env.TENANTRY_URL ?? "http://admin.localhost:8787", await adminToken());
}

function printTenants(items: readonly TenantView[]): void {
  if (items.length === 0) {
    console.log("no tenants");
    return;
  }
  console.log(
    table([
      ["SLUG", "STATUS", "REGION", "PROVISIONER", "SCHEMA", "DOMAINS"],
      ...items.map((t) => [
        t.slug,
        t.status,
        t.region,
        t.provisioner,
        t.schemaVersion ?? "-",
        t.domains.join(",") || "-",
      ]),
    ]),
  );
}

function printTenant(t: TenantView): void {
  const lines: [string, string][] = [
    ["slug", t.slug],
    ["id", t.id],
    ["status", t.status],
    ["region", t.region],
    ["plan", t.plan],
    ["provisioner", t.provisioner],
    ["schema", t.schemaVersion ?? "-"],
    ["domains", t.domains.join(", ") || "-"],
    ["created", t.createdAt],
    ["updated", t.updatedAt],
  ];
  if (t.failedStep) lines.push(["failed at", `${t.failedStep}: ${t.failureReason ?? ""}`]);
  if (t.deletedAt) lines.push(["deleted", t.deletedAt]);
  console.log(table(lines));
}

function output<T>(values: Values, data: T, human: (data: T) => void): void {
  if (values.json) console.log(JSON.stringify(data, null, 2));
  else human(data);
}

function needSlug(positionals: string[], what: string): string {
  const slug = positionals[0];
  if (!slug) throw new UsageError(`${what} needs a tenant SLUG`);
  return slug;
}

async function tenants(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create": {
      const { values, positionals } = parse(rest, {
        region: { type: "string" },
        domain: { type: "string", multiple: true },
        plan: { type: "string" },
        provisioner: { type: "string" },
        "connection-string": { type: "string" },
      });
      const slug = needSlug(positionals, "tenants create");
      if (!values.region) throw new UsageError("tenants create needs --region REGION");
      const started = Date.now();
      const tenant = await (await client()).call<TenantView>("POST", "/v1/tenants", {
        slug,
        region: values.region,
        ...(values.domain ? { domains: values.domain } : {}),
        ...(values.plan ? { plan: values.plan } : {}),
        ...(values.provisioner ? { provisioner: values.provisioner } : {}),
        ...(values["connection-string"] ? { connectionString: values["connection-string"] } : {}),
      });
      output(values, tenant, (t) => {
        printTenant(t);
        console.error(`created ${t.slug} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      });
      return;
    }
    case "list": {
      const { values } = parse(rest, {
        status: { type: "string" },
        region: { type: "string" },
        limit: { type: "string" },
      });
      const api = await client();
      const items: TenantView[] = [];
      let cursor: string | undefined;
      const max = values.limit ? Number(values.limit) : Number.POSITIVE_INFINITY;
      if (!(max > 0)) throw new UsageError("--limit must be a positive number");
      do {
        const query = new URLSearchParams({ limit: String(Math.min(200, max - items.length)) });
        if (values.status) query.set("status", String(values.status));
        if (values.region) query.set("region", String(values.region));
        if (cursor) query.set("cursor", cursor);
        const page = await api.call<{ items: TenantView[]; next?: string }>("GET", `/v1/tenants?${query}`);
        items.push(...page.items);
        cursor = page.next;
      } while (cursor && items.length < max);
      output(values, items, printTenants);
      return;
    }
    case "show":
    case "suspend":
    case "resume":
    case "retry": {
      const { values, positionals } = parse(rest, {});
      const slug = needSlug(positionals, `tenants ${sub}`);
      const api = await client();
      const tenant =
        sub === "show"
          ? await api.call<TenantView>("GET", `/v1/tenants/${encodeURIComponent(slug)}`)
          : await api.call<TenantView>("POST", `/v1/tenants/${encodeURIComponent(slug)}/${sub}`);
      output(values, tenant, printTenant);
      return;
    }
    case "delete": {
      const { values, positionals } = parse(rest, {
        confirm: { type: "string" },
        "final-export": { type: "boolean", default: false },
      });
      const slug = needSlug(positionals, "tenants delete");
      if (values.confirm !== slug) {
        throw new UsageError(`deleting drops ${slug}'s database for good: repeat the slug with --confirm ${slug}`);
      }
      const tenant = await (await client()).call<TenantView>(
        "DELETE",
        `/v1/tenants/${encodeURIComponent(slug)}?confirm=${encodeURIComponent(String(values.confirm))}${values["final-export"] ? "&finalExport=true" : ""}`,
      );
      output(values, tenant, (t) => {
        console.log(`deleted ${t.slug}: database dropped, domains unmapped`);
        if (values["final-export"]) console.log(`final export kept in R2: tenantry exports list ${t.slug}`);
      });
      return;
    }
    default:
      throw new UsageError(`unknown tenants command ${JSON.stringify(sub ?? "")}`);
  }
}

async function domains(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, {});
  const [slug, host] = positionals;
  if (!slug || !host || (sub !== "add" && sub !== "remove"))
    throw new UsageError("usage: domains add|remove SLUG HOST");
  const api = await client();
  const tenant =
    sub === "add"
      ? await api.call<TenantView>("POST", `/v1/tenants/${encodeURIComponent(slug)}/domains`, { domain: host })
      : await api.call<TenantView>(
          "DELETE",
          `/v1/tenants/${encodeURIComponent(slug)}/domains/${encodeURIComponent(host)}`,
        );
  output(values, tenant, printTenant);
}

async function reconcileCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {});
  const report = await (await client()).call<Record<string, number>>("POST", "/v1/reconcile");
  output(values, report, (r) => console.log(table(Object.entries(r).map(([k, v]) => [k, String(v)]))));
}

function printKeys(status: KeyStatus): void {
  const kids = [...new Set([...status.kids, ...Object.keys(status.secrets)])];
  console.log(
    table([
      ["KEY ID", "IN RING", "SECRETS"],
      ...kids.map((kid) => [
        kid === status.currentKid ? `${kid} (current)` : kid,
        status.kids.includes(kid) ? "yes" : "NO",
        String(status.secrets[kid] ?? 0),
      ]),
    ]),
  );
  console.log(
    status.stale === 0
      ? "every secret is under the current key: keys other than it can be removed from the ring"
      : `${status.stale} secret(s) under other keys: run \`tenantry keys reencrypt\` before removing a key`,
  );
}

async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub.startsWith("--")) {
    const { values } = parse(args, {});
    output(values, await (await client()).call<KeyStatus>("GET", "/v1/keys"), printKeys);
    return 0;
  }
  if (sub !== "reencrypt") throw new UsageError(`unknown keys command ${JSON.stringify(sub)}`);
  const { values } = parse(rest, { batch: { type: "string", default: "100" } });
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1 || batch > 500) throw new UsageError("--batch must be 1 to 500");
  const api = await client();
  const failed: ReencryptReport["failed"] = [];
  let reencrypted = 0;
  let changed = 0;
  let after: string | null = null;
  let last: ReencryptReport;
  do {
    const query = new URLSearchParams({ limit: String(batch), ...(after ? { after } : {}) });
    last = await api.call<ReencryptReport>("POST", `/v1/keys/reencrypt?${query}`);
    reencrypted += last.reencrypted;
    changed += last.changed;
    failed.push(...last.failed);
    after = last.next;
    if (!values.json) console.error(`re-encrypted ${reencrypted} so far, ${last.stale} left under other keys`);
  } while (after);
  const summary = { ...last, reencrypted, changed, failed, next: null };
  output(values, summary, (r) => {
    printKeys(r);
    if (r.changed > 0) console.log(`${r.changed} tenant(s) changed meanwhile: run it again to look at them`);
    if (r.failed.length > 0) {
      console.log(table([["TENANT", "SECRET", "REASON"], ...r.failed.map((f) => [f.slug, f.secret, f.reason])]));
    }
  });
  return failed.length > 0 ? 1 : 0;
}

async function auditCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { target: { type: "string" }, limit: { type: "string" } });
  const query = new URLSearchParams({ limit: String(values.limit ?? 50) });
  if (values.target) query.set("target", String(values.target));
  const { items } = await (await client()).call<{
    items: { at: string; actor: string; action: string; target: string; outcome: string }[];
  }>("GET", `/v1/audit?${query}`);
  output(values, items, (rows) =>
    console.log(
      table([
        ["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        ...rows.map((r) => [r.at, r.actor, r.action, r.target, r.outcome]),
      ]),
    ),
  );
}

async function token(args: string[]): Promise<void> {
  const { values } = parse(args, {
    tenant: { type: "string" },
    admin: { type: "boolean", default: false },
    scope: { type: "string" },
    sub: { type: "string" },
    ttl: { type: "string", default: "3600" },
  });
  const ttlSeconds = Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > 30 * 86_400) {
    throw new UsageError("--ttl must be a whole number of seconds between 1 and 2592000");
  }
  const vars = wranglerVars();
  let jwt: string;
  let label: string;
  if (values.admin) {
    const secret = devSecret("ADMIN_JWT_SECRET");
    if (!secret)
      throw new Error("no ADMIN_JWT_SECRET: run `npm run dev` once (it writes .dev.vars) or set ADMIN_JWT_SECRET");
    const scope = String(values.scope ?? ALL_ADMIN_SCOPES);
    jwt = await mintAdminToken({
      secret,
      issuer: process.env.ADMIN_JWT_ISSUER ?? vars.ADMIN_JWT_ISSUER ?? "",
      audience: process.env.ADMIN_JWT_AUDIENCE ?? vars.ADMIN_JWT_AUDIENCE ?? "",
      sub: String(values.sub ?? "dev-admin"),
      scope,
      ttlSeconds,
    });
    label = `admin token (${scope})`;
  } else {
    const tenant = values.tenant;
    if (typeof tenant !== "string" || !/^[a-z][a-z0-9-]{1,30}[a-z0-9]$/.test(tenant)) {
      throw new UsageError("--tenant SLUG is required (lowercase letters, digits and dashes), or --admin");
    }
    const secret = devSecret("JWT_SECRET");
    if (!secret) throw new Error("no JWT_SECRET: run `npm run dev` once (it writes .dev.vars) or set JWT_SECRET");
    jwt = await mintTenantToken({
      secret,
      issuer: process.env.JWT_ISSUER ?? vars.JWT_ISSUER ?? "",
      audience: process.env.JWT_AUDIENCE ?? vars.JWT_AUDIENCE ?? "",
      tenant,
      sub: String(values.sub ?? "dev-user"),
      ttlSeconds,
    });
    label = `token for tenant ${tenant}, subject ${String(values.sub ?? "dev-user")}`;
  }
  if (values.json) console.log(JSON.stringify({ token: jwt, expiresIn: ttlSeconds }));
  else {
    console.error(`${label}, valid ${ttlSeconds} s:`);
    console.log(jwt);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "tenants":
        await tenants(rest);
        return 0;
      case "domains":
        await domains(rest);
        return 0;
      case "reconcile":
        await reconcileCommand(rest);
        return 0;
      case "audit":
        await auditCommand(rest);
        return 0;
      case "keys":
        return await keysCommand(rest);
      case "token":
        await token(rest);
        return 0;
      case "migrate":
        return await migrateCommand(rest, { client, usageError: (message) => new UsageError(message) });
      case "export":
        return await exportCommand(rest, { client, usageError: (message) => new UsageError(message) });
      case "exports":
        return await exportsCommand(rest, { client, usageError: (message) => new UsageError(message) });
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return 0;
      case undefined:
        console.error(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`tenantry: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof ApiError) {
      const { problem } = error;
      console.error(`tenantry: ${problem.status} ${problem.code}${problem.detail ? `: ${problem.detail}` : ""}`);
      for (const item of problem.errors ?? []) console.error(`  ${item.path}: ${item.message}`);
      return 1;
    }
    if (error instanceof UnreachableError) {
      console.error(`tenantry: ${error.message}`);
      return 1;
    }
    console.error(`tenantry: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
