/**
 * `tenantry`: the operator CLI. Talks to the admin API at TENANTRY_URL (default
 * http://admin.localhost:8787) with TENANTRY_ADMIN_TOKEN; in a dev clone it mints an admin token from
 * .dev.vars itself. Human-readable tables by default, `--json` for scripts, non-zero exit on failure.
 */
import { ApiError, UnreachableError } from "./admin-client.ts";
import { UsageError } from "./args.ts";
import { domainsCommand } from "./domains.ts";
import { exportCommand, exportsCommand } from "./export.ts";
import { keysCommand } from "./keys.ts";
import { migrateCommand } from "./migrate.ts";
import { auditCommand, reconcileCommand } from "./operations.ts";
import { client } from "./session.ts";
import { tenantsCommand } from "./tenants.ts";
import { tokenCommand } from "./token.ts";

const USAGE = `usage: tenantry <command> [options]

tenants
  tenants create SLUG --region REGION [--domain HOST]... [--plan PLAN]
                 [--provisioner local|neon|url] [--connection-string-file FILE|-]
  tenants list [--status STATUS] [--region REGION] [--limit N]
  tenants show SLUG
  tenants suspend SLUG
  tenants resume SLUG
  tenants retry SLUG                 resume a failed or interrupted onboarding
  tenants delete SLUG --confirm SLUG drops the tenant's database for good
                 [--final-export]   export it to R2 first (the delete is refused if that fails)
domains (Cloudflare for SaaS custom hostnames when configured; served once active)
  domains add SLUG HOST              prints the DNS records the customer must create
  domains status SLUG                status, certificate, validation errors (settling ones rechecked)
  domains verify SLUG HOST           re-trigger validation
  domains remove SLUG HOST           unmap it and delete its custom hostname
operations
  reconcile [--status]               repair drift between the control database and KV (paged:
                                     --status shows how far the latest pass got); report custom
                                     hostnames without a domain and domains without one
  audit [--target SLUG|HOST] [--limit N]
encryption keys (DB_ENCRYPTION_KEYS rotation: new key first in the ring, deploy, reencrypt,
                 then remove the old key once \`keys\` shows none left under it)
  keys                               connection strings per key id, at rest and in KV records
  keys reencrypt [--batch N]         re-encrypt them all under the current key and rewrite the KV
                                     records behind, N tenants per request (default 100); exit 1
                                     if any could not be decrypted or a KV write failed
migrations (run, rollback and resume wait with a progress bar unless --no-wait;
            exit 1 when the run halts, is cancelled or leaves failed tenants)
  migrate status                     schema versions across the fleet, tenants behind, latest run
  migrate run [--target NAME] [--canary N | --canary-tenant SLUG...] [--wave N]
              [--concurrency N] [--max-failures N] [--dry-run] [--no-wait]
  migrate rollback --steps N [--force] [same options as run, without --target]
                                     down files that drop or truncate export each tenant
                                     first (a tenant whose export fails is refused);
                                     --force skips that; --dry-run lists what would be dropped
  migrate show RUN_ID [--wait]
  migrate resume RUN_ID [--no-wait]  re-queue pending and failed tenants, continue
  migrate cancel RUN_ID              tenants not started yet are skipped
exports (gzip SQL dumps in R2; restore: gunzip -c FILE | psql -v ON_ERROR_STOP=1 -d DB)
  export SLUG [--wait] [--output FILE]
                                     queue one; --wait polls until done; --output (implies --wait)
                                     downloads it through a signed link and checks it
  exports list SLUG                  a tenant's exports (on demand, nightly, final, pre_rollback)
  exports show EXPORT_ID [--wait]
  exports download EXPORT_ID --output FILE
tokens
  token --tenant SLUG [--sub SUBJECT] [--ttl SECONDS] [--scope "catalog:write"]
                                     tenant access token (dev; at most 86400 s)
  token --admin [--scope "tenants:read ..."] [--sub S]    admin token (dev)

Every command takes --json. Environment: TENANTRY_URL (default http://admin.localhost:8787),
TENANTRY_ADMIN_TOKEN (default: minted from .dev.vars in a dev clone).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const deps = { client, usageError: (message: string) => new UsageError(message) };
  try {
    switch (command) {
      case "tenants":
        await tenantsCommand(rest);
        return 0;
      case "domains":
        await domainsCommand(rest);
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
        await tokenCommand(rest);
        return 0;
      case "migrate":
        return await migrateCommand(rest, deps);
      case "export":
        return await exportCommand(rest, deps);
      case "exports":
        return await exportsCommand(rest, deps);
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
