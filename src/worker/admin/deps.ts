/** Builds the control plane's dependencies from the Worker environment. */
import { type CustomHostnameApi, createCloudflareClient } from "../../control/domains/cloudflare.ts";
import { createLocalProvisioner } from "../../control/provisioners/local.ts";
import { createNeonProvisioner } from "../../control/provisioners/neon/provisioner.ts";
import type { Provisioner, ProvisionerKind } from "../../control/provisioners/types.ts";
import { createUrlProvisioner } from "../../control/provisioners/url.ts";
import { type ControlDeps, controlDb } from "../../control/tenants/deps.ts";
import { migrations } from "../../generated/migrations.ts";
import { AppError } from "../../shared/errors.ts";
import { purgeTenantCache } from "../edge/resolve.ts";

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

function neonProjects(env: Env): Record<string, { projectId: string; templateBranchId?: string }> {
  try {
    const parsed = JSON.parse(env.NEON_PROJECTS || "{}") as Record<
      string,
      { projectId: string; templateBranchId?: string }
    >;
    return typeof parsed === "object" && parsed !== null ? parsed : {};
  } catch {
    throw new AppError(500, "internal_error", "NEON_PROJECTS is not valid JSON.");
  }
}

export function provisionersFrom(env: Env): Partial<Record<ProvisionerKind, Provisioner>> {
  const provisioners: Partial<Record<ProvisionerKind, Provisioner>> = {};
  const localRegions = list(env.LOCAL_REGIONS);
  if (env.LOCAL_PROVISIONER_URL)
    provisioners.local = createLocalProvisioner({ adminUrl: env.LOCAL_PROVISIONER_URL, regions: localRegions });
  const projects = neonProjects(env);
  if (env.NEON_API_KEY && Object.keys(projects).length > 0) {
    provisioners.neon = createNeonProvisioner({
      apiKey: env.NEON_API_KEY,
      regions: projects,
      ...(env.NEON_API_URL ? { baseURL: env.NEON_API_URL } : {}),
    });
  }
  provisioners.url = createUrlProvisioner(
    [...new Set([...localRegions, ...Object.keys(projects)])],
    list(env.URL_PROVISIONER_HOSTS),
  );
  return provisioners;
}

/** The custom hostname client, when both the zone and the token are set (else domains are served at once). */
export function customHostnamesFrom(env: Env): CustomHostnameApi | undefined {
  if (!env.CLOUDFLARE_ZONE_ID || !env.CLOUDFLARE_API_TOKEN) return undefined;
  return createCloudflareClient({
    apiToken: env.CLOUDFLARE_API_TOKEN,
    zoneId: env.CLOUDFLARE_ZONE_ID,
    baseUrl: env.CLOUDFLARE_API_URL,
  });
}

export function controlDepsFrom(env: Env, actor: string, requestId?: string): ControlDeps {
  if (!env.CONTROL_DATABASE_URL) throw new AppError(503, "db_unavailable", "The control plane is not configured.");
  return {
    db: controlDb(env.CONTROL_DATABASE_URL),
    kv: env.TENANTS,
    encryptionKeys: env.DB_ENCRYPTION_KEYS,
    provisioners: provisionersFrom(env),
    defaultProvisioner: (env.DEFAULT_PROVISIONER || "local") as ProvisionerKind,
    tenantBundle: migrations,
    reservedHosts: [env.ADMIN_HOST],
    platformDomain: env.PLATFORM_DOMAIN,
    customHostnames: customHostnamesFrom(env),
    actor,
    requestId,
    onProjected: purgeTenantCache,
  };
}
