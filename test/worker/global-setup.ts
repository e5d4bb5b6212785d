/**
 * Node side of the Worker tests: embedded Postgres + gateway, the control database, demo tenants
 * (acme, globex) plus initech onboarded through the control plane, fresh secrets, all handed to the
 * workerd tests through `inject()`.
 */
import { randomBytes } from "node:crypto";
import { neonConfig } from "@neondatabase/serverless";
import type { TestProject } from "vitest/node";
import { startAlertSink } from "../../src/dev/alert-sink.ts";
import { startFakeCloudflareApi } from "../../src/dev/fake-cloudflare/server.ts";
import { useGatewayFetch } from "../../src/dev/gateway/node-fetch.ts";
import { DEMO_TENANTS, ensureControlDatabase, memoryKv, seedDemoTenants } from "../../src/dev/seed.ts";
import { startLocalStack } from "../../src/dev/stack.ts";
import { generateKey } from "../../src/shared/crypto/secrets.ts";
import { FLEET_HOSTNAMES, fleetHostname } from "./fleet-hostnames.ts";

export interface SeedInfo {
  readonly slug: string;
  readonly id: string;
  readonly kv: readonly { key: string; value: string }[];
  readonly url: string;
  readonly database: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    gatewayUrl: string;
    jwtSecret: string;
    adminJwtSecret: string;
    encryptionKeys: string;
    tenants: SeedInfo[];
    /** Superuser connection string: the local provisioner's target, and for checks made in tests. */
    adminUrl: string;
    controlUrl: string;
    /** The fake Cloudflare API (custom hostnames active 1.5 s after creation) and its token. */
    cloudflareUrl: string;
    cloudflareToken: string;
    /** An alert webhook that keeps what it receives (GET lists it), for tests that set ALERT_WEBHOOK_URL. */
    alertSinkUrl: string;
    /** A second fake Cloudflare API holding FLEET_HOSTNAMES pending custom hostnames, and their ids. */
    fleetCloudflareUrl: string;
    fleetHostnameIds: string[];
  }
}

export default async function setup(project: TestProject) {
  const stack = await startLocalStack({ gateway: { port: 0 } });
  const cloudflare = await startFakeCloudflareApi({ activateAfterMs: 1_500 });
  const alerts = await startAlertSink(0, () => undefined);
  // Never active (an hour) and room for the fleet: domains-cron-limits.test.ts pages through them.
  const fleet = await startFakeCloudflareApi({ activateAfterMs: 3_600_000, allocated: 20_000 });
  const fleetIds = fleet.adopt(Array.from({ length: FLEET_HOSTNAMES }, (_, i) => fleetHostname(i)));
  neonConfig.fetchEndpoint = stack.gateway.url;
  useGatewayFetch(neonConfig, stack.gateway.url);
  // The ring the Worker runs with: k1 encrypts; k0 is a retired key that still decrypts, as in the
  // middle of a rotation (admin-keys.test.ts writes tenants under it and re-encrypts them).
  const encryptionKeys = `k1:${generateKey()},k0:${generateKey()}`;
  const tenants = [
    ...DEMO_TENANTS,
    {
      slug: "initech",
      hosts: ["shop.initech.localhost"],
      products: [{ sku: "TPS", name: "TPS Report Cover", priceCents: 100, stock: 1 }],
    },
  ];
  try {
    const controlUrl = await ensureControlDatabase(stack.postgres.url);
    const seeded = await seedDemoTenants({
      adminUrl: stack.postgres.url,
      controlUrl,
      encryptionKeys,
      kv: memoryKv(),
      tenants,
    });
    project.provide("gatewayUrl", stack.gateway.url);
    project.provide("jwtSecret", randomBytes(32).toString("hex"));
    project.provide("adminJwtSecret", randomBytes(32).toString("hex"));
    project.provide("encryptionKeys", encryptionKeys);
    project.provide("adminUrl", stack.postgres.url);
    project.provide("controlUrl", controlUrl);
    project.provide("cloudflareUrl", cloudflare.url);
    project.provide("cloudflareToken", cloudflare.apiToken);
    project.provide("alertSinkUrl", alerts.url);
    project.provide("fleetCloudflareUrl", fleet.url);
    project.provide("fleetHostnameIds", fleetIds);
    project.provide(
      "tenants",
      seeded.map((t) => ({ slug: t.slug, id: t.id, kv: t.kv, url: t.url, database: t.database })),
    );
  } catch (error) {
    await cloudflare.close();
    await alerts.close();
    await fleet.close();
    await stack.stop();
    throw error;
  }
  return async () => {
    await cloudflare.close();
    await alerts.close();
    await fleet.close();
    await stack.stop();
  };
}
