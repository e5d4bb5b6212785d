/**
 * Onboarding is a resumable state machine (provisioning → migrating → active → projected to KV).
 * These tests drive the control plane directly inside workerd (the same code the admin API runs),
 * interrupt it after each committed step or make a step fail for real, then resume it (through the
 * service or POST /v1/tenants/:slug/retry) and check, in Postgres, that exactly one database and one
 * role exist for the tenant, and at the edge, that the tenant is served only once it is active.
 *
 * Slugs here start with `ob-`: the control database is shared with every other test file.
 */

import { env } from "cloudflare:test";
import { neon, neonConfig } from "@neondatabase/serverless";
import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type Provisioner, ProvisionerError } from "../../src/control/provisioners/types.ts";
import { tenants } from "../../src/control/schema.ts";
import { createTenant } from "../../src/control/tenants/create.ts";
import type { ControlDeps, OnboardingStep } from "../../src/control/tenants/deps.ts";
import { getTenant } from "../../src/control/tenants/lifecycle.ts";
import { retryOnboarding } from "../../src/control/tenants/onboarding.ts";
import { migrations } from "../../src/generated/migrations.ts";
import { AppError } from "../../src/shared/errors.ts";
import { ALL_ADMIN_SCOPES, mintAdminToken } from "../../src/shared/tokens.ts";
import { controlDepsFrom } from "../../src/worker/admin/deps.ts";
import { call, json, seedKv, tenantRow, token } from "./support.ts";

interface TenantView {
  slug: string;
  status: string;
  failedStep: string | null;
  failureReason: string | null;
  schemaVersion: string | null;
  domains: string[];
}

class OnboardingInterrupted extends Error {
  override readonly name = "OnboardingInterrupted";
}

const ADMIN = "http://admin.localhost";
const LATEST = migrations.at(-1)?.name;
let admin = "";

/** The Worker's own control-plane dependencies, optionally with some parts replaced. */
function deps(overrides: Partial<ControlDeps> = {}): ControlDeps {
  return { ...controlDepsFrom(env, "onboarding-test"), ...overrides };
}

/** Dependencies whose onboarding stops right after `at` is committed, as if the Worker died there. */
function interruptedAt(at: OnboardingStep): ControlDeps {
  return deps({
    afterStep: (step) => {
      if (step === at) throw new OnboardingInterrupted(`stopped after ${at}`);
    },
  });
}

/** The real local provisioner with `provision` replaced. */
function localWith(provision: (real: Provisioner) => Provisioner["provision"]): Partial<ControlDeps> {
  const real = controlDepsFrom(env, "onboarding-test").provisioners.local;
  if (!real) throw new Error("the local provisioner is not configured in the test environment");
  return {
    provisioners: {
      ...controlDepsFrom(env, "onboarding-test").provisioners,
      local: { ...real, provision: provision(real) },
    },
  };
}

const names = (slug: string) => {
  const base = `tenant_${slug.replaceAll("-", "_")}`;
  return { database: base, role: `${base}_app` };
};

/** Postgres as the superuser, through the gateway (workerd cannot use `pg`). */
function superuser() {
  neonConfig.fetchEndpoint = inject("gatewayUrl");
  return neon(inject("adminUrl"));
}

/** Databases and roles whose names start with the tenant's: exactly one of each is the goal. */
async function resources(slug: string): Promise<{ databases: string[]; roles: string[] }> {
  const { database } = names(slug);
  const sql = superuser();
  const pattern = `${database.replaceAll("_", "\\_")}%`;
  const dbs = (await sql.query("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", [pattern])) as {
    datname: string;
  }[];
  const roles = (await sql.query("SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1", [pattern])) as {
    rolname: string;
  }[];
  return { databases: dbs.map((r) => r.datname), roles: roles.map((r) => r.rolname) };
}

async function expectExactlyOne(slug: string): Promise<void> {
  const { database, role } = names(slug);
  expect(await resources(slug)).toEqual({ databases: [database], roles: [role] });
}

async function shown(slug: string): Promise<TenantView> {
  const response = await call(`${ADMIN}/v1/tenants/${slug}`, { token: admin });
  expect(response.status).toBe(200);
  return (await response.json()) as TenantView;
}

async function retryViaApi(slug: string): Promise<TenantView> {
  const response = await call(`${ADMIN}/v1/tenants/${slug}/retry`, { method: "POST", token: admin });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return JSON.parse(text) as TenantView;
}

async function expectNotServed(host: string): Promise<void> {
  const response = await call(`http://${host}/api/products`);
  expect(response.status).toBe(404);
  expect(((await response.json()) as { code: string }).code).toBe("tenant_not_found");
  expect(await env.TENANTS.get(`host:${host}`)).toBeNull();
}

/** Served from its own database: empty at first, and it takes a write from its own token. */
async function expectServed(slug: string, host: string): Promise<void> {
  const listed = await call(`http://${host}/api/products`);
  expect(listed.status).toBe(200);
  expect(await listed.json()).toEqual({ items: [] });
  const product = await call(`http://${host}/api/products`, {
    ...json({ sku: `${slug.toUpperCase()}-1`, name: "First product", priceCents: 100 }),
    token: await token(slug, "alice", { scope: "catalog:write" }),
  });
  expect(product.status).toBe(201);
  const again = (await (await call(`http://${host}/api/products`)).json()) as { items: { sku: string }[] };
  expect(again.items.map((p) => p.sku)).toEqual([`${slug.toUpperCase()}-1`]);
}

beforeAll(async () => {
  await seedKv();
  neonConfig.fetchEndpoint = inject("gatewayUrl");
  admin = await mintAdminToken({
    secret: env.ADMIN_JWT_SECRET as string,
    issuer: env.ADMIN_JWT_ISSUER,
    audience: env.ADMIN_JWT_AUDIENCE,
    sub: "onboarding-ops",
    scope: ALL_ADMIN_SCOPES,
  });
});

describe("onboarding interrupted after each step, then resumed", () => {
  const cases: { step: OnboardingStep; status: string; servedWhileInterrupted: boolean; via: "api" | "service" }[] = [
    { step: "created", status: "provisioning", servedWhileInterrupted: false, via: "api" },
    { step: "provisioned", status: "migrating", servedWhileInterrupted: false, via: "service" },
    // Active in the control database, but not yet projected to KV: the edge does not know it yet.
    { step: "migrated", status: "active", servedWhileInterrupted: false, via: "api" },
    { step: "projected", status: "active", servedWhileInterrupted: true, via: "service" },
  ];

  it.each(cases)(
    "after $step: $status, served=$servedWhileInterrupted; resumed via $via → active with one database",
    async ({ step, status, servedWhileInterrupted, via }) => {
      const slug = `ob-${step}`;
      const host = `shop.${slug}.localhost`;
      await expect(createTenant(interruptedAt(step), { slug, region: "local", domains: [host] })).rejects.toMatchObject(
        { name: "OnboardingInterrupted" },
      );

      const interrupted = await shown(slug);
      expect(interrupted).toMatchObject({ status, failedStep: null, domains: [host] });
      if (step === "created") expect((await resources(slug)).databases).toEqual([]);
      else await expectExactlyOne(slug);
      if (servedWhileInterrupted) expect((await call(`http://${host}/api/products`)).status).toBe(200);
      else await expectNotServed(host);

      const resumed = via === "api" ? await retryViaApi(slug) : await retryOnboarding(deps(), slug);
      expect(resumed).toMatchObject({ slug, status: "active", schemaVersion: LATEST, failedStep: null });
      await expectExactlyOne(slug);
      await expectServed(slug, host);

      // Resuming an active tenant changes nothing.
      expect((await retryViaApi(slug)).status).toBe("active");
      await expectExactlyOne(slug);
      const listed = (await (await call(`http://${host}/api/products`)).json()) as { items: unknown[] };
      expect(listed.items).toHaveLength(1);
    },
  );

  it("interrupted again while resuming, at every later step, still ends with one database", async () => {
    const slug = "ob-again";
    const host = `shop.${slug}.localhost`;
    await expect(createTenant(interruptedAt("created"), { slug, region: "local", domains: [host] })).rejects.toThrow(
      OnboardingInterrupted,
    );
    for (const step of ["provisioned", "migrated"] as const) {
      await expect(retryOnboarding(interruptedAt(step), slug)).rejects.toMatchObject({ name: "OnboardingInterrupted" });
      await expectExactlyOne(slug);
      await expectNotServed(host);
    }
    expect((await retryOnboarding(deps(), slug)).status).toBe("active");
    await expectExactlyOne(slug);
    await expectServed(slug, host);
  });
});

describe("onboarding that fails for real is recorded as failed, then retried", () => {
  it("a provisioner outage: failed at provisioning, not served, retried → active", async () => {
    const slug = "ob-outage";
    const host = `shop.${slug}.localhost`;
    let calls = 0;
    const flaky = deps(
      localWith((real) => async (request, previous) => {
        calls += 1;
        // Driver text may carry a connection string, in any case (schemes are case-insensitive).
        if (calls === 1)
          throw new ProvisionerError("upstream_failed", "simulated outage at POSTGRESQL://app:hunter2@db/x");
        return real.provision(request, previous);
      }),
    );
    const error = await createTenant(flaky, { slug, region: "local", domains: [host] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 502, code: "onboarding_failed" });

    const failed = await getTenant(deps(), slug);
    expect(failed).toMatchObject({ status: "failed", failedStep: "provisioning" });
    expect(failed.failureReason).toContain("simulated outage at POSTGRESQL://[redacted]");
    expect(failed.failureReason).not.toContain("hunter2");
    expect((await resources(slug)).databases).toEqual([]);
    await expectNotServed(host);

    expect((await retryOnboarding(flaky, slug)).status).toBe("active");
    expect(calls).toBe(2);
    expect(await shown(slug)).toMatchObject({ status: "active", failedStep: null, failureReason: null });
    await expectExactlyOne(slug);
    await expectServed(slug, host);
  });

  it("a provisioner that dies after creating the database: the retry reuses it", async () => {
    const slug = "ob-halfway";
    const host = `shop.${slug}.localhost`;
    const crashing = deps(
      localWith((real) => async (request, previous) => {
        await real.provision(request, previous);
        throw new ProvisionerError("operation_failed", "lost the response");
      }),
    );
    await expect(createTenant(crashing, { slug, region: "local", domains: [host] })).rejects.toMatchObject({
      code: "onboarding_failed",
    });
    expect(await shown(slug)).toMatchObject({ status: "failed", failedStep: "provisioning" });
    await expectExactlyOne(slug);
    await expectNotServed(host);

    // The API's retry uses the Worker's real provisioner.
    const resumed = await retryViaApi(slug);
    expect(resumed).toMatchObject({ status: "active", failedStep: null, failureReason: null });
    await expectExactlyOne(slug);
    await expectServed(slug, host);
  });

  it("a failing migration: failed at migrating with a reason that shows no SQL, retried → active", async () => {
    const slug = "ob-migration";
    const host = `shop.${slug}.localhost`;
    const broken = deps({
      tenantBundle: [
        ...migrations,
        { name: "9999_broken", checksum: "0".repeat(64), statements: ["SELECT * FROM no_such_table"], down: null },
      ],
    });
    await expect(createTenant(broken, { slug, region: "local", domains: [host] })).rejects.toMatchObject({
      status: 502,
      code: "onboarding_failed",
    });
    const failed = await shown(slug);
    expect(failed).toMatchObject({ status: "failed", failedStep: "migrating" });
    expect(failed.failureReason ?? "").not.toMatch(/no_such_table|SELECT|postgres(ql)?:\/\//i);
    await expectExactlyOne(slug);
    await expectNotServed(host);

    const resumed = await retryViaApi(slug);
    expect(resumed).toMatchObject({ status: "active", schemaVersion: LATEST, failedStep: null });
    await expectExactlyOne(slug);
    await expectServed(slug, host);
  });

  it("the failed create and the retries are in the audit log", async () => {
    const response = await call(`${ADMIN}/v1/audit?target=ob-outage`, { token: admin });
    const { items } = (await response.json()) as { items: { action: string; outcome: string; actor: string }[] };
    expect(items.map((e) => [e.action, e.outcome, e.actor])).toEqual([
      ["tenant.retry", "ok", "onboarding-test"],
      ["tenant.create", "error", "onboarding-test"],
    ]);
  });

  it("a deleted tenant cannot be retried back to life", async () => {
    const slug = "ob-gone";
    await createTenant(deps(), { slug, region: "local" });
    const deleted = await call(`${ADMIN}/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE", token: admin });
    expect(deleted.status).toBe(200);
    const retry = await call(`${ADMIN}/v1/tenants/${slug}/retry`, { method: "POST", token: admin });
    expect(retry.status).toBe(409);
    expect(((await retry.json()) as { code: string }).code).toBe("invalid_state");
    expect(await resources(slug)).toEqual({ databases: [], roles: [] });
  });
});

describe("concurrent onboarding runs", () => {
  /** Sets the tenant's onboarding lease as a run that died without releasing it would leave it. */
  async function leaveLease(slug: string, until: "future" | "past"): Promise<void> {
    await deps()
      .db.update(tenants)
      .set({
        onboardingLeaseUntil: until === "future" ? sql`now() + interval '1 minute'` : sql`now() - interval '1 second'`,
      })
      .where(eq(tenants.slug, slug));
  }

  /** Deps whose provisioner says when a run enters it, and provisions only once `proceed()` is called. */
  function provisionGate() {
    let entered: () => void = () => {};
    const inProvision = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let proceed: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      proceed = resolve;
    });
    const gated = deps(
      localWith((real) => async (request, previous) => {
        entered();
        await held;
        return real.provision(request, previous);
      }),
    );
    return { gated, inProvision, proceed };
  }

  it("a second run while one holds the tenant is refused with 409; the first ends active with one database", async () => {
    const slug = "ob-twice";
    const host = `shop.${slug}.localhost`;
    await expect(createTenant(interruptedAt("created"), { slug, region: "local", domains: [host] })).rejects.toThrow(
      OnboardingInterrupted,
    );
    const { gated, inProvision, proceed } = provisionGate();
    const first = retryOnboarding(gated, slug);
    await inProvision;
    // The first run is held inside provisioning until the second one has been answered.
    const second = await call(`${ADMIN}/v1/tenants/${slug}/retry`, { method: "POST", token: admin });
    proceed();
    expect(second.status).toBe(409);
    expect(((await second.json()) as { code: string }).code).toBe("conflict");
    expect((await first).status).toBe("active");
    await expectExactlyOne(slug);
    await expectServed(slug, host);
    // The lease went with the run: the next retry runs (and changes nothing).
    expect((await retryViaApi(slug)).status).toBe("active");
    await expectExactlyOne(slug);
  });

  it("a run that outlives its lease does not release the lease of the run that took over", async () => {
    const slug = "ob-outlived";
    await expect(createTenant(interruptedAt("created"), { slug, region: "local" })).rejects.toThrow(
      OnboardingInterrupted,
    );
    const { gated, inProvision, proceed } = provisionGate();
    const first = retryOnboarding(gated, slug);
    await inProvision;
    // Meanwhile its lease lapsed and another run took the tenant (staged: a fresh lease in place).
    await leaveLease(slug, "future");
    const taken = (await tenantRow(slug)).onboardingLeaseUntil;
    expect(taken).not.toBeNull();
    proceed();
    expect((await first).status).toBe("active");
    // The other run's lease is still there: a third run is refused until it ends or lapses.
    expect((await tenantRow(slug)).onboardingLeaseUntil).toBe(taken);
    const refused = await call(`${ADMIN}/v1/tenants/${slug}/retry`, { method: "POST", token: admin });
    expect(refused.status).toBe(409);
    await expectExactlyOne(slug);
  });

  it("a delete while a run holds the tenant is refused with 409; deleted after it ends, it stays deleted", async () => {
    const slug = "ob-delete-held";
    const host = `shop.${slug}.localhost`;
    await expect(createTenant(interruptedAt("created"), { slug, region: "local", domains: [host] })).rejects.toThrow(
      OnboardingInterrupted,
    );
    const { gated, inProvision, proceed } = provisionGate();
    const first = retryOnboarding(gated, slug);
    await inProvision;
    const refused = await call(`${ADMIN}/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE", token: admin });
    proceed();
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { code: string }).code).toBe("conflict");
    expect((await first).status).toBe("active");
    const deleted = await call(`${ADMIN}/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE", token: admin });
    expect(deleted.status).toBe(200);
    expect(await shown(slug)).toMatchObject({ status: "deleted" });
    expect(await resources(slug)).toEqual({ databases: [], roles: [] });
    await expectNotServed(host);
  });

  it("a run whose lease lapsed cannot bring a tenant deleted under it back, nor leave its database", async () => {
    const slug = "ob-delete-lapsed";
    const host = `shop.${slug}.localhost`;
    await expect(createTenant(interruptedAt("created"), { slug, region: "local", domains: [host] })).rejects.toThrow(
      OnboardingInterrupted,
    );
    const { gated, inProvision, proceed } = provisionGate();
    const first = retryOnboarding(gated, slug).catch((e: unknown) => e);
    await inProvision;
    // The run is slower than its lease: the lease lapses and the tenant is deleted meanwhile.
    await leaveLease(slug, "past");
    const deleted = await call(`${ADMIN}/v1/tenants/${slug}?confirm=${slug}`, { method: "DELETE", token: admin });
    expect(deleted.status).toBe(200);
    proceed();
    expect(await first).toMatchObject({ status: 409, code: "invalid_state" });
    expect(await shown(slug)).toMatchObject({ status: "deleted" });
    expect(await resources(slug)).toEqual({ databases: [], roles: [] });
    await expectNotServed(host);
  });

  it("a lease left by a run that died refuses retries until it lapses, then the retry resumes", async () => {
    const slug = "ob-lapsed";
    const host = `shop.${slug}.localhost`;
    await expect(
      createTenant(interruptedAt("provisioned"), { slug, region: "local", domains: [host] }),
    ).rejects.toThrow(OnboardingInterrupted);
    await leaveLease(slug, "future");
    const refused = await call(`${ADMIN}/v1/tenants/${slug}/retry`, { method: "POST", token: admin });
    expect(refused.status).toBe(409);
    expect((await shown(slug)).status).toBe("migrating");
    await leaveLease(slug, "past");
    expect((await retryViaApi(slug)).status).toBe("active");
    await expectExactlyOne(slug);
    await expectServed(slug, host);
  });
});
