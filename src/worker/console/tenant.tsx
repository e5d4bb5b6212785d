/**
 * A tenant's page (`/tenants/:slug`): its record, domains (domains.tsx: status and DNS records),
 * exports (with a download button that
 * mints the same signed link as the admin API), its audit trail, and the actions an operator may
 * take (suspend, resume, retry onboarding, export now; delete only after typing the slug). Every
 * button is shown: the action itself checks the scope and answers 403 when it is missing.
 */
import type { Context } from "hono";
import { type ExportView, listExports } from "../../control/export/service.ts";
import { type AuditEntry, auditEntries } from "../../control/tenants/audit.ts";
import { getTenant } from "../../control/tenants/lifecycle.ts";
import { controlDeps } from "../admin/request-deps.ts";
import { DomainsSection } from "./domains.tsx";
import type { ConsoleEnv } from "./guard.ts";
import { ActionForm, Layout } from "./layout.tsx";
import type { ConsoleSession } from "./session.ts";

function Actions(props: { base: string; session: ConsoleSession }) {
  const { base, session } = props;
  return (
    <section aria-labelledby="actions-h">
      <h2 id="actions-h">Actions</h2>
      <div class="actions">
        <ActionForm action={`${base}/suspend`} label="Suspend" session={session} />
        <ActionForm action={`${base}/resume`} label="Resume" session={session} />
        <ActionForm action={`${base}/retry`} label="Retry onboarding" session={session} />
        <ActionForm action={`${base}/export`} label="Export now" session={session} />
      </div>
      <ActionForm action={`${base}/delete`} label="Delete for good" session={session} danger>
        <label for="confirm">Type the slug to delete this tenant and drop its database</label>
        <input id="confirm" name="confirm" autocomplete="off" required />
      </ActionForm>
    </section>
  );
}

function Exports(props: { exports: ExportView[] | undefined; session: ConsoleSession }) {
  const { exports, session } = props;
  return (
    <section aria-labelledby="exports-h">
      <h2 id="exports-h">Exports</h2>
      {exports === undefined ? (
        <p>Listing exports needs the exports:read scope.</p>
      ) : exports.length === 0 ? (
        <p>No exports yet.</p>
      ) : (
        <section class="scroll" tabindex={0} aria-labelledby="exports-h">
          <table>
            <thead>
              <tr>
                <th scope="col">Export</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Size</th>
                <th scope="col">Download</th>
              </tr>
            </thead>
            <tbody>
              {exports.map((e) => (
                <tr>
                  <td>
                    <time datetime={e.createdAt}>{e.createdAt}</time>
                  </td>
                  <td>{e.kind}</td>
                  <td>{e.status}</td>
                  <td>{e.bytes === null ? "—" : `${e.bytes} bytes`}</td>
                  <td>
                    {e.status === "complete" ? (
                      <ActionForm action={`/exports/${e.id}/download`} label="Download" session={session} />
                    ) : (
                      "—"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </section>
  );
}

function Audit(props: { audit: AuditEntry[] }) {
  const { audit } = props;
  return (
    <section aria-labelledby="audit-h">
      <h2 id="audit-h">Audit trail</h2>
      <section class="scroll" tabindex={0} aria-labelledby="audit-h">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody id="audit">
            {audit.map((entry) => (
              <tr>
                <td>
                  <time datetime={entry.at}>{entry.at}</time>
                </td>
                <td>{entry.actor}</td>
                <td>{entry.action}</td>
                <td>{entry.outcome}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </section>
  );
}

export async function tenantPage(c: Context<ConsoleEnv>) {
  const slug = c.req.param("slug") ?? "";
  const deps = controlDeps(c);
  const tenant = await getTenant(deps, slug);
  const scopes = c.get("adminScopes");
  const [exports, audit] = await Promise.all([
    scopes.has("exports:read") ? listExports(deps, slug) : Promise.resolve(undefined),
    auditEntries(deps, { target: slug, limit: 20 }),
  ]);
  const session = c.get("session");
  const base = `/tenants/${tenant.slug}`;
  return c.html(
    <Layout title={`Tenant ${tenant.slug}`} session={session}>
      <dl class="facts">
        <dt>Status</dt>
        <dd id="tenant-status">{tenant.status}</dd>
        <dt>Region</dt>
        <dd>{tenant.region}</dd>
        <dt>Schema version</dt>
        <dd>
          <code>{tenant.schemaVersion ?? "—"}</code>
        </dd>
        <dt>Provisioner</dt>
        <dd>{tenant.provisioner}</dd>
        {tenant.failureReason ? (
          <>
            <dt>Onboarding stopped at</dt>
            <dd>{`${tenant.failedStep ?? "?"}: ${tenant.failureReason}`}</dd>
          </>
        ) : null}
      </dl>
      <Actions base={base} session={session} />
      <DomainsSection base={base} domains={tenant.domainDetails} session={session} />
      <Exports exports={exports} session={session} />
      <Audit audit={audit} />
    </Layout>,
  );
}
