/**
 * What every control-plane operation is given: the control database, KV, the provisioners and who
 * is acting. Runtime-agnostic (the Worker's admin API and Node tooling both build it): the control
 * database is reached through Neon's HTTP driver, KV through a small interface, provisioners
 * through theirs, so nothing here needs a Workers binding.
 */
import { neon } from "@neondatabase/serverless";
import { drizzle, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import { AppError } from "../../shared/errors.ts";
import type { MigrationBundle } from "../../shared/migrations.ts";
import type { CustomHostnameApi } from "../domains/cloudflare.ts";
import type { Provisioner, ProvisionerKind } from "../provisioners/types.ts";
import * as schema from "../schema.ts";

export type ControlDb = NeonHttpDatabase<typeof schema>;

export function controlDb(url: string): ControlDb {
  return drizzle({ client: neon(url), schema });
}

/**
 * The KV operations the projection needs (a Workers KVNamespace satisfies it). A `get` of up to 100
 * keys is one operation against the 1,000 per invocation (Workers KV limits), so fleet-wide jobs
 * read in bulk.
 */
export interface KvStore {
  get(key: string, type: "text"): Promise<string | null>;
  get(keys: string[], type: "text"): Promise<Map<string, string | null>>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: { prefix: string; cursor?: string | undefined }): Promise<{
    keys: { name: string }[];
    list_complete: boolean;
    cursor?: string | undefined;
  }>;
}

export type OnboardingStep = "created" | "provisioned" | "migrated" | "projected";

export interface ControlDeps {
  readonly db: ControlDb;
  readonly kv: KvStore;
  /** `DB_ENCRYPTION_KEYS` key ring (first key encrypts). */
  readonly encryptionKeys: string;
  readonly provisioners: Partial<Record<ProvisionerKind, Provisioner>>;
  readonly defaultProvisioner: ProvisionerKind;
  /** The tenant schema every tenant database is migrated to. */
  readonly tenantBundle: MigrationBundle;
  /** Hosts that may never be a tenant domain (the admin host). */
  readonly reservedHosts: readonly string[];
  /** `PLATFORM_DOMAIN`: it and every name under it are platform hosts, never custom domains. */
  readonly platformDomain?: string | undefined;
  /**
   * Cloudflare for SaaS custom hostnames. Absent (no CLOUDFLARE_API_TOKEN / CLOUDFLARE_ZONE_ID): a
   * domain is served as soon as it is mapped, as before custom hostnames (tests that do not exercise
   * them; `.localhost` demo hosts); `npm run dev` configures the fake API.
   */
  readonly customHostnames?: CustomHostnameApi | undefined;
  /** POSTs an alert (ALERT_WEBHOOK_URL); absent: none sent. */
  readonly alert?: ((payload: Record<string, unknown>) => Promise<void>) | undefined;
  /** Who is acting (token subject), for the audit log. */
  readonly actor: string;
  readonly requestId?: string | undefined;
  /** Called after each committed step (tests use it to interrupt onboarding). */
  readonly afterStep?: ((step: OnboardingStep, tenantId: string) => Promise<void> | void) | undefined;
  /** Called after KV records change (the Worker purges its isolate cache). */
  readonly onProjected?: (() => void) | undefined;
}

/** The configured provisioner of that kind, or a 422 naming the one that is missing. */
export function provisionerFor(deps: ControlDeps, kind: ProvisionerKind): Provisioner {
  const provisioner = deps.provisioners[kind];
  if (!provisioner) throw new AppError(422, "provisioner_unavailable", `The ${kind} provisioner is not configured.`);
  return provisioner;
}
