/**
 * Neon tenants provisioned before the app role was made with SQL have an app role made through the
 * Neon API, a `neon_superuser` member. Every fleet apply run moves it off: DML grants on the
 * tenant's tables, then the membership revoked. Staged here on a local tenant recorded as a `neon`
 * one (the fleet only reads `provisioner` and `resource_ref.appRole`), its app role made a member
 * of a `neon_superuser` role on the embedded Postgres; one consumer delivery is run by hand.
 *
 * Slugs here start with `far-`: the control database is shared with every other test file.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, inject, it } from "vitest";
import { applyTenant } from "../../src/control/fleet/consumer.ts";
import type { FleetDeps, MigrateMessage } from "../../src/control/fleet/dispatch.ts";
import { cancelRun } from "../../src/control/fleet/runs.ts";
import { tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import { controlDeps, migrationSql, startRunWhenFree, tenantRow } from "./support.ts";

const SLUG = `far-${Math.random().toString(36).slice(2, 6)}`;
const ROLE = `tenant_${SLUG.replaceAll("-", "_")}_app`;
const sent: MigrateMessage[] = [];
const deps = (): FleetDeps => ({
  ...controlDeps("test:fleet-app-roles"),
  send: async (messages) => {
    sent.push(...messages);
  },
});
let runId = "";

function superuser() {
  neonConfig.fetchEndpoint = inject("gatewayUrl");
  return neon(inject("adminUrl"));
}

const memberships = async () =>
  (await superuser().query(
    "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1",
    [ROLE],
  )) as { rolname: string }[];

describe("fleet: apply runs move Neon app roles off neon_superuser", () => {
  afterAll(async () => {
    if (runId) await cancelRun(deps(), runId).catch(() => undefined);
    // Back to what it really is, so nothing else treats it as a Neon tenant.
    await deps().db.update(tenants).set({ provisioner: "local" }).where(eq(tenants.slug, SLUG));
  });

  it("an apply run revokes the membership and the role keeps its DML rights", async () => {
    await createTenant(deps(), { slug: SLUG, region: "local" });
    const admin = superuser();
    await admin.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'neon_superuser') THEN CREATE ROLE neon_superuser NOLOGIN; END IF; END $$",
    );
    await admin.query(`GRANT neon_superuser TO "${ROLE}"`);
    expect((await memberships()).map((m) => m.rolname)).toEqual(["neon_superuser"]);
    await deps()
      .db.update(tenants)
      .set({ provisioner: "neon", resourceRef: { appRole: ROLE } })
      .where(eq(tenants.slug, SLUG));

    const run = await startRunWhenFree(deps(), { canaryTenants: [SLUG], concurrency: 1, maxFailures: 1000 });
    runId = run.id;
    const { id } = await tenantRow(SLUG);
    const message = sent.find((m) => m.runId === runId && m.tenantId === id);
    expect(message).toBeDefined();
    expect(await applyTenant(deps(), message as MigrateMessage)).toBe("done");

    expect(await memberships()).toEqual([]);
    const grants = (await (
      await migrationSql(SLUG)
    ).query(
      "SELECT has_table_privilege($1, 'public.products', 'SELECT, INSERT, UPDATE, DELETE') AS dml, has_table_privilege($1, 'public.products', 'TRUNCATE') AS truncate",
      [ROLE],
    )) as { dml: boolean; truncate: boolean }[];
    expect(grants).toEqual([{ dml: true, truncate: false }]);
  });
});
