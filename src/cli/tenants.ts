/**
 * `tenantry tenants …`: onboarding and lifecycle through the admin API's /v1/tenants routes
 * (`tenants show` lists the domains with their status; domains themselves: domains.ts).
 */
import { readFileSync } from "node:fs";
import type { TenantView } from "../control/tenants/rows.ts";
import { needSlug, output, parse, UsageError } from "./args.ts";
import { printDomains, printPendingDns } from "./domains.ts";
import { table } from "./format.ts";
import { client } from "./session.ts";

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
  if (t.domainDetails.length > 0) {
    console.log("");
    printDomains(t.domainDetails);
    printPendingDns(t.domainDetails);
  }
}

/**
 * The `url` provisioner's connection string, read from a file or from stdin (`-`): a secret given
 * as an argument would show in `ps` and in the shell's history.
 */
export function readConnectionString(source: string, readStdin = () => readFileSync(0, "utf8")): string {
  const text = source === "-" ? readStdin() : readFileSync(source, "utf8");
  const value = text.trim();
  if (!value || value.includes("\n")) throw new UsageError("--connection-string-file must hold one connection string");
  return value;
}

async function create(rest: string[]): Promise<void> {
  const { values, positionals } = parse(rest, {
    region: { type: "string" },
    domain: { type: "string", multiple: true },
    plan: { type: "string" },
    provisioner: { type: "string" },
    "connection-string": { type: "string" },
    "connection-string-file": { type: "string" },
  });
  const slug = needSlug(positionals, "tenants create");
  if (!values.region) throw new UsageError("tenants create needs --region REGION");
  if (values["connection-string"] !== undefined)
    throw new UsageError(
      "--connection-string would leave the secret in ps and your shell history: use --connection-string-file FILE (or - for stdin)",
    );
  const file = values["connection-string-file"];
  const started = Date.now();
  const tenant = await (await client()).call<TenantView>("POST", "/v1/tenants", {
    slug,
    region: values.region,
    ...(values.domain ? { domains: values.domain } : {}),
    ...(values.plan ? { plan: values.plan } : {}),
    ...(values.provisioner ? { provisioner: values.provisioner } : {}),
    ...(file !== undefined ? { connectionString: readConnectionString(file) } : {}),
  });
  output(values, tenant, (t) => {
    printTenant(t);
    console.error(`created ${t.slug} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
}

async function list(rest: string[]): Promise<void> {
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
    if (values.status) query.set("status", values.status);
    if (values.region) query.set("region", values.region);
    if (cursor) query.set("cursor", cursor);
    const page = await api.call<{ items: TenantView[]; next?: string }>("GET", `/v1/tenants?${query}`);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length < max);
  output(values, items, printTenants);
}

async function act(sub: "show" | "suspend" | "resume" | "retry", rest: string[]): Promise<void> {
  const { values, positionals } = parse(rest, {});
  const slug = needSlug(positionals, `tenants ${sub}`);
  const api = await client();
  const tenant =
    sub === "show"
      ? await api.call<TenantView>("GET", `/v1/tenants/${encodeURIComponent(slug)}`)
      : await api.call<TenantView>("POST", `/v1/tenants/${encodeURIComponent(slug)}/${sub}`);
  output(values, tenant, printTenant);
}

async function remove(rest: string[]): Promise<void> {
  const { values, positionals } = parse(rest, {
    confirm: { type: "string" },
    "final-export": { type: "boolean", default: false },
  });
  const slug = needSlug(positionals, "tenants delete");
  if (values.confirm !== slug) {
    throw new UsageError(`deleting drops ${slug}'s database for good: repeat the slug with --confirm ${slug}`);
  }
  const query = new URLSearchParams({ confirm: values.confirm });
  if (values["final-export"]) query.set("finalExport", "true");
  const tenant = await (await client()).call<TenantView>("DELETE", `/v1/tenants/${encodeURIComponent(slug)}?${query}`);
  output(values, tenant, (t) => {
    console.log(`deleted ${t.slug}: database dropped, domains unmapped`);
    if (values["final-export"]) console.log(`final export kept in R2: tenantry exports list ${t.slug}`);
  });
}

export async function tenantsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create":
      return create(rest);
    case "list":
      return list(rest);
    case "show":
    case "suspend":
    case "resume":
    case "retry":
      return act(sub, rest);
    case "delete":
      return remove(rest);
    default:
      throw new UsageError(`unknown tenants command ${JSON.stringify(sub ?? "")}`);
  }
}
