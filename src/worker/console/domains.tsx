/**
 * A tenant's custom domains on its page: each one's state, certificate status and validation
 * errors as the control plane recorded them (`domainView`, the admin API's and `tenants show`'s
 * view), the DNS records the customer must create while it is not active yet (CNAME to the
 * fallback origin, TXT ownership and certificate records, or the HTTP token), and forms to map a
 * domain, re-check one and unmap one (actions.ts, through the admin API's own functions).
 */
import type { DnsInstructions } from "../../control/schema.ts";
import type { DomainView } from "../../control/tenants/rows.ts";
import { ActionForm } from "./layout.tsx";
import type { ConsoleSession } from "./session.ts";

/** The id of a domain's DNS table: host names only hold letters, digits, dots and hyphens. */
export const dnsTableId = (hostname: string) => `dns-${hostname.replaceAll(".", "-")}`;

function DnsRecords(props: { hostname: string; dns: DnsInstructions }) {
  const { hostname, dns } = props;
  const id = dnsTableId(hostname);
  return (
    <section aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>{`DNS records to create for ${hostname}`}</h3>
      <section class="scroll" tabindex={0} aria-labelledby={`${id}-h`}>
        <table id={id}>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Name</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {dns.records.map((r) => (
              <tr>
                <td>{r.type}</td>
                <td>
                  <code>{r.name}</code>
                </td>
                <td>
                  <code>{r.value}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {dns.http ? (
        <p>
          Or prove ownership over HTTP instead of the first TXT record: serve <code>{dns.http.body}</code> at{" "}
          <code>{dns.http.url}</code>.
        </p>
      ) : null}
    </section>
  );
}

export function DomainsSection(props: { base: string; domains: DomainView[]; session: ConsoleSession }) {
  const { base, domains, session } = props;
  const path = (d: DomainView, action: string) => `${base}/domains/${encodeURIComponent(d.hostname)}/${action}`;
  const waiting = domains.filter((d) => d.status !== "active" && d.status !== "removing" && d.dns);
  return (
    <section aria-labelledby="domains-h">
      <h2 id="domains-h">Domains</h2>
      {domains.length === 0 ? (
        <p>No custom domains; the platform subdomain serves it.</p>
      ) : (
        <section class="scroll" tabindex={0} aria-labelledby="domains-h">
          <table>
            <thead>
              <tr>
                <th scope="col">Domain</th>
                <th scope="col">Status</th>
                <th scope="col">Certificate</th>
                <th scope="col">Validation errors</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody id="domains">
              {domains.map((d) => (
                <tr>
                  <td>
                    <code>{d.hostname}</code>
                  </td>
                  <td>{d.status}</td>
                  <td>{d.customHostname ? (d.sslStatus ?? "—") : "not needed"}</td>
                  <td>{d.validationErrors.length === 0 ? "none" : d.validationErrors.join("; ")}</td>
                  <td>
                    {d.status === "removing" ? (
                      "being removed"
                    ) : (
                      <div class="actions">
                        <ActionForm action={path(d, "verify")} label={`Check ${d.hostname} again`} session={session} />
                        <ActionForm
                          action={path(d, "remove")}
                          label={`Remove ${d.hostname}`}
                          session={session}
                          danger
                        />
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {waiting.map((d) => (d.dns ? <DnsRecords hostname={d.hostname} dns={d.dns} /> : null))}
      <ActionForm action={`${base}/domains`} label="Add domain" session={session}>
        <label for="domain">Domain to map to this tenant</label>
        <input id="domain" name="domain" autocomplete="off" required />
      </ActionForm>
    </section>
  );
}
