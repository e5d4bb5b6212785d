/**
 * The fleet page (`/`): tenants by status and region, the schema-version distribution as a bar
 * chart (native <meter> bars: no inline styles under the CSP), tenants behind the latest migration,
 * mapped domains, and the latest runs. Reads `fleetStatus` exactly as `migrate status` does.
 */
import type { Context } from "hono";
import type { RunSummary, TenantCensus } from "../../control/fleet/overview.ts";
import type { FleetStatus } from "../../control/fleet/runs.ts";
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
      <p>{`${census.total} tenants, ${census.domains} mapped domains.`}</p>
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
      <VersionChart status={status} />
      <LatestRuns runs={runs} />
    </Layout>,
  );
}
