/**
 * The tenant list (`/tenants`): filters by status and region, cursor paging, through `listTenants`,
 * the admin API's own list (same page size bounds).
 */
import type { Context } from "hono";
import { TENANT_STATES, type TenantState } from "../../control/schema.ts";
import { listTenants } from "../../control/tenants/lifecycle.ts";
import { controlDeps } from "../admin/request-deps.ts";
import type { ConsoleEnv } from "./guard.ts";
import { Layout } from "./layout.tsx";

const PAGE = 25;

export async function tenantsPage(c: Context<ConsoleEnv>) {
  const status = TENANT_STATES.find((s) => s === c.req.query("status")) as TenantState | undefined;
  const region = c.req.query("region")?.slice(0, 64) || undefined;
  const cursor = c.req.query("cursor")?.slice(0, 64) || undefined;
  const page = await listTenants(controlDeps(c), { status, region, cursor, limit: PAGE });
  const next = new URLSearchParams({
    ...(status ? { status } : {}),
    ...(region ? { region } : {}),
    ...(page.next ? { cursor: page.next } : {}),
  });
  return c.html(
    <Layout title="Tenants" session={c.get("session")}>
      <form method="get" action="/tenants" class="filters">
        <label for="status">Status</label>
        <select id="status" name="status">
          <option value="">any</option>
          {TENANT_STATES.map((s) => (
            <option value={s} selected={s === status}>
              {s}
            </option>
          ))}
        </select>
        <label for="region">Region</label>
        <input id="region" name="region" value={region ?? ""} />
        <button type="submit">Filter</button>
      </form>
      <section class="scroll" tabindex={0} aria-label="Tenants">
        <table>
          <thead>
            <tr>
              <th scope="col">Slug</th>
              <th scope="col">Status</th>
              <th scope="col">Region</th>
              <th scope="col">Schema version</th>
              <th scope="col">Domains</th>
            </tr>
          </thead>
          <tbody>
            {page.items.map((t) => (
              <tr>
                <td>
                  <a href={`/tenants/${t.slug}`}>{t.slug}</a>
                </td>
                <td>{t.status}</td>
                <td>{t.region}</td>
                <td>
                  <code>{t.schemaVersion ?? "—"}</code>
                </td>
                <td>{t.domains.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {page.next ? (
        <p>
          <a href={`/tenants?${next}`} rel="next">
            Next page
          </a>
        </p>
      ) : null}
    </Layout>,
  );
}
