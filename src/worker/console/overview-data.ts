/** What the fleet page reads, from the control plane's own functions (the same ones the admin API calls). */
import type { Context } from "hono";
import { recentRuns, tenantCensus } from "../../control/fleet/overview.ts";
import { fleetStatus } from "../../control/fleet/runs.ts";
import { migrations } from "../../generated/migrations.ts";
import { controlDeps } from "../admin/request-deps.ts";
import type { ConsoleEnv } from "./guard.ts";

export async function overviewOf(c: Context<ConsoleEnv>) {
  const deps = controlDeps(c);
  const [status, census, runs] = await Promise.all([
    fleetStatus(deps, migrations),
    tenantCensus(deps),
    recentRuns(deps, 10),
  ]);
  return { status, census, runs };
}
