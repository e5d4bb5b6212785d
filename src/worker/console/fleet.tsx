/**
 * The fleet page (`/`): tenants by status and region, the schema-version distribution as a bar
 * chart (native <meter> bars: no inline styles under the CSP), tenants behind the latest migration,
 * active domains against pending ones (and any moved, blocked, deleted or being removed), and the
 * latest runs. Reads `fleetStatus` exactly as `migrate status` does.
 */
import type { Context } from "hono";
import type { RunSummary, TenantCensus } from "../../control/fleet/overview.ts";
import type { FleetStatus } from "../../control/fleet/runs.ts";
import { DOMAIN_STATES } from "../../control/schema.ts";
import type { ConsoleEnv } from "./guard.ts";
import { Layout } from "./layout.tsx";
import { overviewOf } from "./overview-data.ts";

function Census(props: { census: TenantCensus }) {
  const { census } = props;
  const regions = [...new Set(Object.values(census.byStatus).flatMap((r) => Object.keys(r)))].sort();
  return (
    <section aria-labelledby="tenants-h">
      <h2 id="tenants-h">Tenants by status and region</h2>
      <section class="scroll" tabindex={0} aria-labelledby="tenants-h">
        <table>
          <thead>
            <tr>
              <th scope="col">Status</th>
              {regions.map((r) => (
                <th scope="col">{r}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Object.entries(census.byStatus).map(([state, byRegion]) => (
              <tr>
                <th scope="row">
                  <a href={`/tenants?status=${state}`}>{state}</a>
                </th>
                {regions.map((r) => (
                  <td>{byRegion[r] ?? 0}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <p>{`${census.total} tenants.`}</p>
    </section>
  );
}

/** Active domains against the ones still waiting (for DNS or a certificate), and any in trouble. */
function Domains(props: { counts: TenantCensus["domains"] }) {
  const { counts } = props;
  const others = DOMAIN_STATES.filter((s) => s !== "active" && s !== "pending" && (counts[s] ?? 0) > 0);
  return (
    <section aria-labelledby="domains-h">
      <h2 id="domains-h">Custom domains</h2>
      <dl class="facts" id="domain-counts">
        <dt>Active</dt>
        <dd id="domains-active">{counts.active ?? 0}</dd>
        <dt>Pending (waiting for DNS or a certificate)</dt>
        <dd id="domains-pending">{counts.pending ?? 0}</dd>
        {others.map((state) => (
          <>
            <dt>{state}</dt>
            <dd id={`domains-${state}`}>{counts[state]}</dd>
          </>
        ))}
      </dl>
    </section>
  );
}

function VersionChart(props: { status: FleetStatus }) {
  const { status } = props;
  return (
    <section aria-labelledby="versions-h">
      <h2 id="versions-h">Schema versions of active tenants</h2>
      <p id="latest">
        Latest migration: <code>{status.latest ?? "(none)"}</code>; <strong id="behind">{status.behind}</strong> of{" "}
        {status.activeTenants} active tenants behind.
      </p>
      <dl class="chart">
        {Object.entries(status.versions).map(([version, n]) => (
          <div class="chart-row">
            <dt>
              <code>{version}</code>
            </dt>
            <dd>
              <meter value={n} min={0} max={Math.max(1, status.activeTenants)} aria-label={`${version}: ${n} tenants`}>
                {n}
              </meter>
              <span class="n">{n}</span>
            </dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function LatestRuns(props: { runs: RunSummary[] }) {
  const { runs } = props;
  return (
    <section aria-labelledby="runs-h">
      <h2 id="runs-h">Latest runs</h2>
      {runs.length === 0 ? (
        <p>No runs yet.</p>
      ) : (
        <section class="scroll" tabindex={0} aria-labelledby="runs-h">
          <table>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Kind</th>
                <th scope="col">Target</th>
                <th scope="col">Status</th>
                <th scope="col">By</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr>
                  <td>
                    <a href={`/runs/${run.id}`}>{run.id}</a>
                  </td>
                  <td>{run.dryRun ? `${run.kind} (dry run)` : run.kind}</td>
                  <td>{run.target ?? "—"}</td>
                  <td>{run.status}</td>
                  <td>{run.createdBy}</td>
                  <td>
                    <time datetime={run.createdAt}>{run.createdAt}</time>
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

export async function fleetPage(c: Context<ConsoleEnv>) {
  const { status, census, runs } = await overviewOf(c);
  return c.html(
    <Layout title="Fleet" session={c.get("session")}>
      <Census census={census} />
      <Domains counts={census.domains} />
      <VersionChart status={status} />
      <LatestRuns runs={runs} />
    </Layout>,
  );
}
