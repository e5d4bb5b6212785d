import { describe, expect, it } from "vitest";
import { createTenant } from "../../src/control/tenants/create.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { adminToken, call, controlDeps, json } from "./support.ts";

describe("fleet smoke", () => {
  it("rolls out through the queue", async () => {
    const old = { ...controlDeps("test"), tenantBundle: migrations.slice(0, 1) };
    for (const slug of ["fs-one", "fs-two", "fs-three"]) await createTenant(old, { slug, region: "local" });
    const token = await adminToken();
    const started = await call("http://admin.localhost/v1/migrations/runs", {
      // Every tenant of the shared worker-test database is in this run (dozens, depending on which
      // files ran first); a whole consumer batch per round keeps the rollout to a few seconds.
      ...json({ canary: 1, concurrency: 10 }),
      token,
    });
    const run = (await started.json()) as { id: string };
    expect(started.status, JSON.stringify(run)).toBe(202);
    let progress: { status: string; counts: Record<string, number> } = { status: "running", counts: {} };
    const deadline = Date.now() + 90_000;
    while (progress.status === "running" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      progress = (await (
        await call(`http://admin.localhost/v1/migrations/runs/${run.id}`, { token })
      ).json()) as typeof progress;
    }
    expect(progress.status, JSON.stringify(progress)).toBe("completed");
  }, 120_000);
});
