/**
 * One error type for the whole Worker and one mapping to RFC 9457 problem+json. Codes are stable and
 * machine-readable (ARCHITECTURE.md "Contracts"); messages never carry SQL, stacks or secrets.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorCode =
  | "bad_request"
  | "invalid_host"
  | "tenant_not_found"
  | "tenant_suspended"
  | "tenant_migrating"
  | "tenant_unavailable"
  | "unauthorized"
  | "tenant_mismatch"
  | "forbidden"
  | "csrf_failed"
  | "validation_failed"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "constraint_violation"
  | "insufficient_stock"
  | "cart_empty"
  | "cart_closed"
  | "payload_too_large"
  | "db_unavailable"
  | "region_unsupported"
  | "provisioner_unavailable"
  | "url_provisioner_disabled"
  | "url_host_not_allowed"
  | "onboarding_failed"
  | "confirmation_required"
  | "invalid_state"
  | "export_failed"
  | "link_invalid"
  | "link_expired"
  | "quota_exceeded"
  | "cloudflare_unavailable"
  | "cloudflare_rejected"
  | "internal_error";

const TITLES: Record<ErrorCode, string> = {
  bad_request: "Bad request",
  invalid_host: "Invalid host",
  tenant_not_found: "Tenant not found",
  tenant_suspended: "Tenant suspended",
  tenant_migrating: "Tenant is being migrated",
  tenant_unavailable: "Tenant unavailable",
  unauthorized: "Unauthorized",
  tenant_mismatch: "Token belongs to another tenant",
  forbidden: "Forbidden",
  csrf_failed: "Cross-site request refused",
  validation_failed: "Validation failed",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  conflict: "Conflict",
  constraint_violation: "Constraint violation",
  insufficient_stock: "Insufficient stock",
  cart_empty: "Cart is empty",
  cart_closed: "Cart is already ordered",
  payload_too_large: "Payload too large",
  db_unavailable: "Database unavailable",
  region_unsupported: "Region not supported",
  provisioner_unavailable: "Provisioner not configured",
  url_provisioner_disabled: "The url provisioner is off",
  url_host_not_allowed: "Database host not allowed",
  onboarding_failed: "Onboarding failed",
  confirmation_required: "Confirmation required",
  quota_exceeded: "Quota exceeded",
  cloudflare_unavailable: "Cloudflare API unavailable",
  cloudflare_rejected: "Cloudflare API refused the request",
  invalid_state: "Invalid state for this action",
  export_failed: "Export failed",
  link_invalid: "Invalid download link",
  link_expired: "Download link expired",
  internal_error: "Internal error",
};

export interface ProblemExtras {
  /** Field-level validation problems. */
  readonly errors?: readonly { readonly path: string; readonly message: string }[];
  /** A full quota's numbers (quota_exceeded). */
  readonly quota?: { readonly allocated: number; readonly used: number };
  /** What the upstream API answered (cloudflare_*): its HTTP status and error codes, never its text. */
  readonly upstream?: { readonly status: number; readonly codes?: readonly number[] };
}

export class AppError extends Error {
  override readonly name = "AppError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    /** Safe for clients: never SQL, connection strings or driver text. */
    readonly detail?: string,
    options?: { cause?: unknown; headers?: Record<string, string>; extras?: ProblemExtras },
  ) {
    super(detail ?? TITLES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.headers = options?.headers ?? {};
    this.extras = options?.extras ?? {};
  }
  readonly headers: Record<string, string>;
  readonly extras: ProblemExtras;
}

export interface Problem extends ProblemExtras {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail?: string;
  readonly instance?: string;
  readonly requestId?: string;
}

export function problemOf(error: AppError, requestId: string | undefined, instance: string): Problem {
  return {
    type: `https://tenantry.dev/problems/${error.code}`,
    title: TITLES[error.code],
    status: error.status,
    code: error.code,
    ...(error.detail ? { detail: error.detail } : {}),
    ...error.extras,
    instance,
    ...(requestId ? { requestId } : {}),
  };
}
