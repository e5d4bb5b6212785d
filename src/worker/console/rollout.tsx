/**
 * Rollouts: the start form (`/rollouts/new`, showing what `migrate status` shows first), a run's
 * page (`/runs/:id`: phases with progress bars, tenants per second, ETA, failed tenants with the
 * migration and the database's message, resume and cancel) and its JSON (`/runs/:id/progress.json`)
 * that the console script polls while the run is running. Starting, resuming and cancelling call
 * `startRun` / `resumeRun` / `cancelRun` and need fleet:run, as in the admin API.
 */
import { Hono } from "hono";
import { cancelRun, fleetStatus, resumeRun, startRun } from "../../control/fleet/runs.ts";
import { migrations } from "../../generated/migrations.ts";
import { AppError } from "../../shared/errors.ts";
import { requireScope } from "../admin/auth.ts";
import { controlDeps, fleetDeps } from "../admin/request-deps.ts";
import { StartRunBody } from "../admin/schemas.ts";
import type { ConsoleEnv } from "./guard.ts";
import { ActionForm, Bar, Layout } from "./layout.tsx";
import { type RunView, runView } from "./run-progress.ts";

const phaseName = (phase: number) => (phase === 0 ? "Canary" : `Wave ${phase}`);

/** The start form's fields as the admin API's StartRunBody (empty fields left out). */
function runOptions(form: Record<string, unknown>) {
  const text = (key: string) => (typeof form[key] === "string" && form[key] !== "" ? (form[key] as string) : undefined);
  const number = (key: string) => (text(key) === undefined ? undefined : Number(text(key)));
  const parsed = StartRunBody.safeParse({
    target: text("target"),
    canary: number("canary"),
    wave: number("wave"),
    concurrency: number("concurrency"),
    maxFailures: number("maxFailures"),
    dryRun: form.dryRun === "on",
  });
  if (!parsed.success) {
    throw new AppError(422, "validation_failed", "The rollout has invalid fields.", {
      extras: { errors: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
    });
  }
  return parsed.data;
}

function RunBody(props: { view: RunView }) {
  const { run, phases } = props.view;
  return (
    <section id="run" data-progress-url={`/runs/${run.id}/progress.json`} data-status={run.status} aria-live="polite">
      <p>
        Status: <strong id="run-status">{run.status}</strong>
        {run.haltReason ? <span id="halt-reason">{` (${run.haltReason})`}</span> : null}
      </p>
      <Bar id="overall" label="All tenants" value={props.view.finished} max={run.total} />
      {phases.map((p) => (
        <Bar
          id={`phase-${p.phase}`}
          label={phaseName(p.phase)}
          value={(p.counts.done ?? 0) + (p.counts.failed ?? 0) + (p.counts.drift ?? 0) + (p.counts.skipped ?? 0)}
          max={p.total}
        />
      ))}
      <p>
        {"Pace: "}
        <span id="rate">{props.view.rateText}</span>
        {"; ETA: "}
        <span id="eta">{props.view.etaText}</span>
      </p>
      <h2 id="failures-h">Failed tenants</h2>
      <section class="scroll" tabindex={0} aria-labelledby="failures-h">
        <table>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">State</th>
              <th scope="col">Migration</th>
              <th scope="col">Database said</th>
            </tr>
          </thead>
          <tbody id="failures">
            {run.failures.map((f) => (
              <tr>
                <td>{f.slug}</td>
                <td>{f.status}</td>
                <td>{f.migration ?? "—"}</td>
                <td>{f.error ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </section>
  );
}

export function rolloutRoutes() {
  const routes = new Hono<ConsoleEnv>();
  routes.get("/rollouts/new", requireScope("tenants:read"), async (c) => {
    const status = await fleetStatus(controlDeps(c), migrations);
    const session = c.get("session");
    return c.html(
      <Layout title="New rollout" session={session}>
        <p id="status">
          {`Latest ${status.latest ?? "(none)"}; ${status.behind} of ${status.activeTenants} active tenants behind.`}
        </p>
        <ul>
          {Object.entries(status.versions).map(([v, n]) => (
            <li>
              <code>{v}</code>
              {`: ${n}`}
            </li>
          ))}
        </ul>
        <form method="post" action="/runs" class="rollout">
          <input type="hidden" name="_csrf" value={session.csrf} />
          <label for="target">Target migration</label>
          <select id="target" name="target">
            {[...migrations].reverse().map((m) => (
              <option value={m.name}>{m.name}</option>
            ))}
          </select>
          <label for="canary">Canary tenants</label>
          <input id="canary" name="canary" type="number" min="0" value="1" />
          <label for="wave">Wave size</label>
          <input id="wave" name="wave" type="number" min="1" />
          <label for="concurrency">Concurrency</label>
          <input id="concurrency" name="concurrency" type="number" min="1" max="250" value="10" />
          <label for="maxFailures">Max failures</label>
          <input id="maxFailures" name="maxFailures" type="number" min="0" value="10" />
          <div>
            <input id="dryRun" name="dryRun" type="checkbox" />
            <label for="dryRun">Dry run (apply, then roll back)</label>
          </div>
          <button type="submit">Start rollout</button>
        </form>
      </Layout>,
    );
  });
  routes.post("/runs", requireScope("fleet:run"), async (c) => {
    const run = await startRun(fleetDeps(c), runOptions(await c.req.parseBody()));
    return c.redirect(`/runs/${run.id}`, 303);
  });
  routes.get("/runs/:id", requireScope("tenants:read"), async (c) => {
    const view = await runView(c, c.req.param("id"));
    const session = c.get("session");
    return c.html(
      <Layout title={`Run ${view.run.id}`} session={session}>
        <p>{`${view.run.dryRun ? "Dry run: " : ""}${view.run.kind} to ${view.run.target ?? "—"}`}</p>
        <RunBody view={view} />
        <div class="actions">
          <ActionForm action={`/runs/${view.run.id}/resume`} label="Resume" session={session} />
          <ActionForm action={`/runs/${view.run.id}/cancel`} label="Cancel" session={session} danger />
        </div>
      </Layout>,
    );
  });
  routes.get("/runs/:id/progress.json", requireScope("tenants:read"), async (c) =>
    c.json(await runView(c, c.req.param("id"))),
  );
  routes.post("/runs/:id/resume", requireScope("fleet:run"), async (c) => {
    const run = await resumeRun(fleetDeps(c), c.req.param("id"));
    return c.redirect(`/runs/${run.id}`, 303);
  });
  routes.post("/runs/:id/cancel", requireScope("fleet:run"), async (c) => {
    const run = await cancelRun(fleetDeps(c), c.req.param("id"));
    return c.redirect(`/runs/${run.id}`, 303);
  });
  return routes;
}
