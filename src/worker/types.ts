/** The Hono environment shared by every middleware and route of the Worker. */
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import type { TenantRecord } from "../shared/tenant-record.ts";
import type { TenantClaims } from "./auth/verify.ts";
import type { Logger } from "./http/log.ts";
import type { RequestIdVariables } from "./http/request-id.ts";

export type Db = NeonHttpDatabase<Record<string, never>>;

export interface AppVariables extends RequestIdVariables {
  log: Logger;
  /** The tenant resolved from the request host (edge middleware). */
  tenant: TenantRecord;
  /** This request's database handle, bound to the tenant's own database (tenant-db middleware). */
  db: Db;
  /** Verified claims of the caller's token (auth middleware). */
  claims: TenantClaims;
}

export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}
