/**
 * Creating a tenant: the input is checked (slug, region of the chosen provisioner, domains), the
 * tenant row and its domains are inserted in one batch, and onboarding starts. A slug is unique
 * forever, so a taken one is a 409 even after its tenant was deleted. For the `url` provisioner the
 * caller brings the database, so its connection strings are sealed at once and provisioning skipped.
 */

import { eq } from "drizzle-orm";
import { AppError } from "../../shared/errors.ts";
import { isValidSlug } from "../../shared/host.ts";
import type { ProvisionerKind } from "../provisioners/types.ts";
import { domains, tenants } from "../schema.ts";
import { audited } from "./audit.ts";
import { type ControlDeps, provisionerFor } from "./deps.ts";
import { createCustomHostname, normaliseDomain } from "./domains.ts";
import { onboard } from "./onboarding.ts";
import { isUniqueViolation, type TenantView } from "./rows.ts";
import { sealConnections } from "./secrets.ts";

export interface CreateTenantInput {
  readonly slug: string;
  readonly region: string;
  readonly plan?: string | undefined;
  readonly provisioner?: ProvisionerKind | undefined;
  readonly domains?: readonly string[] | undefined;
  /** For the `url` provisioner: the existing database's connection string (app role). */
  readonly connectionString?: string | undefined;
  /** For the `url` provisioner: a connection string allowed to run migrations (defaults to the above). */
  readonly migrationConnectionString?: string | undefined;
}

/** Slugs that would make a platform subdomain (`<slug>.<PLATFORM_DOMAIN>`) look like the platform's own. */
export const RESERVED_SLUGS: readonly string[] = ["admin", "www", "api", "app", "mail", "status", "docs", "cdn"];

function newTenantId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `ten_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The slug and region checks, as 422s naming the field. */
function checkInput(deps: ControlDeps, input: CreateTenantInput, kind: ProvisionerKind): void {
  if (RESERVED_SLUGS.includes(input.slug)) {
    throw new AppError(422, "validation_failed", "This slug is reserved.", {
      extras: { errors: [{ path: "slug", message: "reserved for platform hosts" }] },
    });
  }
  if (!isValidSlug(input.slug)) {
    throw new AppError(422, "validation_failed", "Invalid slug.", {
      extras: {
        errors: [{ path: "slug", message: "3–32 lowercase letters, digits and single dashes, starting with a letter" }],
      },
    });
  }
  const provisioner = provisionerFor(deps, kind);
  if (!provisioner.regions().includes(input.region)) {
    throw new AppError(422, "region_unsupported", `The ${kind} provisioner has no target in region ${input.region}.`, {
      extras: { errors: [{ path: "region", message: `supported: ${provisioner.regions().join(", ")}` }] },
    });
  }
}

/** The `url` provisioner's secrets, sealed now (no other provisioner has them before provisioning). */
async function urlSecrets(
  deps: ControlDeps,
  input: CreateTenantInput,
  id: string,
): Promise<{ dbSecret: string; migrationSecret: string }> {
  if (!input.connectionString) {
    throw new AppError(422, "validation_failed", "The url provisioner needs a connection string.", {
      extras: { errors: [{ path: "connectionString", message: "required for provisioner url" }] },
    });
  }
  // The Worker will call these hosts (migrations now, tenant requests later): only allowed ones.
  const provisioner = provisionerFor(deps, "url");
  provisioner.checkConnection?.(input.connectionString, "connectionString");
  if (input.migrationConnectionString)
    provisioner.checkConnection?.(input.migrationConnectionString, "migrationConnectionString");
  return sealConnections(deps, id, input.connectionString, input.migrationConnectionString ?? input.connectionString);
}

export async function createTenant(deps: ControlDeps, input: CreateTenantInput): Promise<TenantView> {
  return audited(
    deps,
    "tenant.create",
    input.slug,
    async () => {
      const kind = input.provisioner ?? deps.defaultProvisioner;
      checkInput(deps, input, kind);
      const hostnames = [
        ...new Set((input.domains ?? []).map((d) => normaliseDomain(d, deps.reservedHosts, deps.platformDomain))),
      ];
      const id = newTenantId();
      const secrets = kind === "url" ? await urlSecrets(deps, input, id) : undefined;
      try {
        await deps.db.batch([
          deps.db.insert(tenants).values({
            id,
            slug: input.slug,
            status: secrets ? "migrating" : "provisioning",
            region: input.region,
            plan: input.plan ?? "standard",
            provisioner: kind,
            ...(secrets ?? {}),
          }),
          // With Cloudflare configured they are custom hostnames, pending until active.
          ...hostnames.map((hostname) =>
            deps.db
              .insert(domains)
              .values({ hostname, tenantId: id, status: deps.customHostnames ? "pending" : "active" }),
          ),
        ]);
      } catch (error) {
        if (isUniqueViolation(error, "tenants_slug_key"))
          throw new AppError(409, "conflict", "A tenant with this slug exists (slugs are never reused).");
        if (isUniqueViolation(error)) throw new AppError(409, "conflict", "A domain is already mapped to a tenant.");
        throw error;
      }
      await startCustomHostnames(deps, id, hostnames);
      await deps.afterStep?.("created", id);
      return onboard(deps, id);
    },
    (tenant) => ({ id: tenant.id, region: tenant.region, status: tenant.status }),
  );
}

/**
 * Creates the custom hostnames of a new tenant's domains at once, so validation runs while the
 * database is provisioned. One Cloudflare refuses or cannot take stays pending without an id and
 * the cron's domain pass (domains/poll.ts) creates it later; onboarding goes on either way.
 */
async function startCustomHostnames(deps: ControlDeps, id: string, hostnames: readonly string[]): Promise<void> {
  if (!deps.customHostnames || hostnames.length === 0) return;
  const [row] = await deps.db.select().from(tenants).where(eq(tenants.id, id));
  if (!row) return;
  for (const hostname of hostnames) await createCustomHostname(deps, row, hostname).catch(() => undefined);
}
