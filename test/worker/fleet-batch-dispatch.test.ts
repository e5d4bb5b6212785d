/**
 * The Worker's queue handler dispatches once per batch, not once per tenant: at Neon-like latency
 * every control-database request is on each tenant's path, and a dispatch is several of them. A
 * batch of every tenant of one run (three of them ours) is handed to `worker.queue`; the control database sees one
 * dispatch (its query for running runs) and one request per tenant for the claim's three reads,
 * and every tenant is migrated and the run completes.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetDeps, MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { migrationRuns, runTenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { migrations } from "../../src/generated/migrations.ts";
import worker from "../../src/worker/index.ts";
import { controlDeps, startRunWhenFree } from "./support.ts";

const TAG = `fb${Math.random().toString(36).slice(2, 6)}`;
const sent: MigrateMessage[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-batch-dispatch"),
  send: async (messages) => {
    sent.push(...messages);
  },
});

let runId = "";

/** The SQL texts of one request of the HTTP driver (a single query or a batch). */
function texts(init: RequestInit | undefined): string[] {
  const body = JSON.parse(String(init?.body ?? "{}")) as { query?: string; queries?: { query: string }[] };
  return body.queries ? body.queries.map((q) => q.query) : [String(body.query)];
}

describe("fleet: the queue handler dispatches once per batch", () => {
  beforeAll(async () => {
    // Onboarded at the latest version: the run (every active tenant, all queued at once) finds nothing
    // to apply, and records each tenant done.
    await Promise.all([1, 2, 3].map((n) => createTenant(deps(), { slug: `${TAG}-${n}`, region: "local" })));
    runId = (await startRunWhenFree(deps(), { concurrency: 250, maxFailures: 1000 })).id;
  }, 180_000);

  afterAll(async () => {
    neonConfig.fetchFunction = undefined;
    const [run] = runId ? await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId)) : [];
    if (run && run.status !== "completed" && run.status !== "cancelled") await cancelRun(deps(), runId);
  });

  it("one dispatch and one claim request per tenant for a batch of a whole run", async () => {
    const mine = sent.filter((m) => m.runId === runId);
    expect(mine.length).toBeGreaterThan(0);
    const requests: string[][] = [];
    neonConfig.fetchFunction = async (input: string | URL | Request, init?: RequestInit) => {
      requests.push(texts(init));
      return fetch(input, init);
    };
    const batch = createMessageBatch<MigrateMessage>(
      "tenantry-fleet",
      mine.map((body, i) => ({ id: `b-${i}`, timestamp: Date.now(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    try {
      await worker.queue(batch, env, ctx);
    } finally {
      neonConfig.fetchFunction = undefined;
    }
    const result = await getQueueResult(batch, ctx);
    expect([...result.explicitAcks].sort()).toEqual(mine.map((_, i) => `b-${i}`).sort());

    const runningRuns = requests.filter((r) =>
      r.some((q) => /^select .* from "migration_runs" where "migration_runs"\."status" = \$1$/i.test(q)),
    );
    expect(runningRuns).toHaveLength(1);
    // The claim reads run, run_tenants row and tenant in one request.
    const claims = requests.filter(
      (r) => r.length === 3 && /from "migration_runs"/.test(r[0] ?? "") && /from "tenants"/.test(r[2] ?? ""),
    );
    expect(claims).toHaveLength(mine.length);

    const rows = await deps()
      .db.select({ status: runTenants.status, toVersion: runTenants.toVersion })
      .from(runTenants)
      .where(eq(runTenants.runId, runId));
    expect(rows.map((r) => r.status)).toEqual(mine.map(() => "done"));
    expect(new Set(rows.map((r) => r.toVersion))).toEqual(new Set([migrations.at(-1)?.name]));
    const [run] = await deps().db.select().from(migrationRuns).where(eq(migrationRuns.id, runId));
    expect(run?.status).toBe("completed");
  });
});
