/**
 * `tenantry domains add|remove|verify|status`: a tenant's custom domains through the admin API.
 * `add` prints the DNS records the customer must create as zone-file lines, ready to paste; `status`
 * shows each domain's state, certificate status and validation errors.
 */
import type { DomainView, TenantView } from "../control/tenants/rows.ts";
import { output, parse, UsageError } from "./args.ts";
import { table } from "./format.ts";
import { client } from "./session.ts";

/** Zone-file lines (`name. 300 IN TYPE value`), the format every DNS host imports or mirrors. */
export function dnsLines(domain: DomainView): string[] {
  const lines = (domain.dns?.records ?? []).map((r) =>
    r.type === "TXT" ? `${r.name}. 300 IN TXT "${r.value}"` : `${r.name}. 300 IN CNAME ${r.value}.`,
  );
  if (domain.dns?.http) lines.push(`# or serve ${domain.dns.http.url} with the body ${domain.dns.http.body}`);
  return lines;
}

export function printDomains(items: readonly DomainView[]): void {
  if (items.length === 0) {
    console.log("no domains");
    return;
  }
  console.log(
    table([
      ["DOMAIN", "STATUS", "CERTIFICATE", "CHECKED", "ERRORS"],
      ...items.map((d) => [
        d.hostname,
        d.status,
        d.customHostname ? (d.sslStatus ?? "-") : "(no custom hostname)",
        d.checkedAt ?? "-",
        d.validationErrors.join("; ") || "-",
      ]),
    ]),
  );
}

/** The DNS records of each custom hostname still waiting for the customer (`tenants show`). */
export function printPendingDns(items: readonly DomainView[]): void {
  for (const domain of items.filter((d) => d.customHostname && d.status === "pending" && d.dns)) {
    console.log(`\n${domain.hostname}: the customer must create (zone-file format):`);
    for (const line of dnsLines(domain)) console.log(`  ${line}`);
  }
}

function printAdded(tenant: TenantView, host: string): void {
  const domain = tenant.domainDetails.find((d) => d.hostname === host.toLowerCase().replace(/\.$/, ""));
  if (!domain) {
    printDomains(tenant.domainDetails);
    return;
  }
  console.log(`${domain.hostname}: ${domain.status}`);
  if (!domain.customHostname || domain.status === "active") return;
  console.log("\nAsk the customer to create these DNS records (zone-file format):\n");
  for (const line of dnsLines(domain)) console.log(`  ${line}`);
  console.log(`\nThen: tenantry domains status ${tenant.slug}   (served once active)`);
}

export async function domainsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, {});
  const [slug, host] = positionals;
  const api = await client();
  if (sub === "status") {
    if (!slug) throw new UsageError("usage: domains status SLUG");
    const list = await api.call<{ slug: string; items: DomainView[] }>(
      "GET",
      `/v1/tenants/${encodeURIComponent(slug)}/domains`,
    );
    return output(values, list, (l) => printDomains(l.items));
  }
  if (!slug || !host || (sub !== "add" && sub !== "remove" && sub !== "verify"))
    throw new UsageError("usage: domains add|remove|verify SLUG HOST, or domains status SLUG");
  const base = `/v1/tenants/${encodeURIComponent(slug)}/domains`;
  const tenant =
    sub === "add"
      ? await api.call<TenantView>("POST", base, { domain: host })
      : sub === "verify"
        ? await api.call<TenantView>("POST", `${base}/${encodeURIComponent(host)}/verify`)
        : await api.call<TenantView>("DELETE", `${base}/${encodeURIComponent(host)}`);
  output(values, tenant, (t) => (sub === "remove" ? printDomains(t.domainDetails) : printAdded(t, host)));
}
