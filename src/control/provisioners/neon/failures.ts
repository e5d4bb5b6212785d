/**
 * What a failed Neon API call tells us, and whether it may be retried. axios errors are reduced to a
 * `Failure` (status, `Retry-After`, the API's message) at once and never kept: they carry the API
 * key in their request config. Pure functions, so the retry rules read in one place; the retry loop
 * itself is in client.ts.
 */

/** What we know about a failed API call. Built from axios errors without keeping them (they carry the API key in their config). */
export interface Failure {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly detail: string;
}

function header(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== "object") return undefined;
  const get = (headers as { get?: unknown }).get;
  const value =
    typeof get === "function"
      ? (get as (n: string) => unknown).call(headers, name)
      : (headers as Record<string, unknown>)[name];
  return typeof value === "string" ? value : value == null ? undefined : String(value);
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function toFailure(error: unknown): Failure {
  const e = error as {
    isAxiosError?: boolean;
    response?: { status?: number; headers?: unknown; data?: unknown };
    code?: string;
    message?: string;
  } | null;
  const response = e?.isAxiosError ? e.response : undefined;
  if (response && typeof response.status === "number") {
    const data = response.data as { message?: unknown; code?: unknown } | undefined;
    const message = data && typeof data === "object" && typeof data.message === "string" ? data.message : "";
    return {
      status: response.status,
      retryAfterMs: parseRetryAfter(header(response.headers, "retry-after")),
      detail: message,
    };
  }
  // No response: a network error or a timeout. Keep only the short code / message.
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  return { detail: [code, message].filter(Boolean).join(" ") || "network error" };
}

/** 423 (resource locked by a running operation) and 503 are documented as safe to retry; 429 and other 5xx are rate limits and hiccups. */
export const isRetryable = (f: Failure) =>
  f.status === undefined || f.status === 429 || f.status === 423 || f.status >= 500;
/** The request was certainly not carried out (rejected before processing), so a retry cannot duplicate anything. */
export const wasRejected = (f: Failure) => f.status === 429 || f.status === 423 || f.status === 503;
