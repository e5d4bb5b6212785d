/**
 * One interface for every way a tenant gets its own database. The control plane persists the
 * returned `ref` after each step so an interrupted onboarding resumes without creating a second
 * database; every method is idempotent.
 */
export type ProvisionerKind = "local" | "neon" | "url";

export interface ProvisionRequest {
  /** Control-plane tenant id (stable, never reused). */
  readonly tenantId: string;
  /** Validated slug: lowercase letters, digits, single dashes, 3–32 chars. */
  readonly slug: string;
  /** Data-residency region, fixed at creation. */
  readonly region: string;
}

/** Provisioner-specific identifiers of what was created (e.g. database and role, or project and branch). */
export type ResourceRef = Readonly<Record<string, string>>;

export interface ProvisionResult {
  readonly ref: ResourceRef;
  /**
   * Connection string the tenant's app traffic uses: its own least-privilege role on its own
   * database. Stored only encrypted (control DB and KV).
   */
  readonly connectionUri: string;
  /**
   * Connection string with rights to run migrations (DDL) on the tenant database. Used by the
   * control plane, never by tenant requests.
   */
  readonly migrationUri: string;
}

export class ProvisionerError extends Error {
  override readonly name = "ProvisionerError";
  constructor(
    readonly code: "region_unsupported" | "not_found" | "upstream_failed" | "operation_failed" | "invalid_input",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Provisioner {
  readonly kind: ProvisionerKind;
  /** Regions this provisioner has a target for; others are refused (data residency). */
  regions(): readonly string[];
  /**
   * Creates what is missing and returns the tenant's database. `previous` is the ref saved by an
   * earlier, interrupted call: implementations must find and reuse what it names (or what exists
   * under the tenant's deterministic names) rather than create a duplicate.
   */
  provision(request: ProvisionRequest, previous?: ResourceRef): Promise<ProvisionResult>;
  /** Removes the tenant's database and role (GDPR delete). Succeeds when they are already gone. */
  deprovision(request: ProvisionRequest, ref: ResourceRef): Promise<void>;
  /** Whether the database named by `ref` still exists (for checks after delete). */
  exists(request: ProvisionRequest, ref: ResourceRef): Promise<boolean>;
  /**
   * For a provisioner that takes the caller's connection string (`url`): throws a 422 `AppError`
   * unless the Worker may connect where it points. `path` names the input field in the error.
   */
  checkConnection?(uri: string, path: string): void;
}
