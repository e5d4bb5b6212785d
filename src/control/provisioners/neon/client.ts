/**
 * The Neon API client as the provisioner uses it: `@neondatabase/api-client` over axios' `fetch`
 * adapter (so the same code runs in Node and inside a Cloudflare Worker: no `node:` imports here),
 * plus the two disciplines every step relies on. `callNeon` retries 429, 423, 5xx and network
 * errors with exponential backoff and jitter (honouring `Retry-After`), and before retrying a call
 * that may have taken effect it asks the caller to look for the result, so a retried create never
 * makes a second branch. `waitForOperations` polls the operations a mutating call started until
 * they finish, fail or time out. Every message that leaves here has the API key and any password
 * redacted.
 */
import { type Api, createApiClient, type Operation } from "@neondatabase/api-client";
import { redactSecrets } from "../../../shared/redact.ts";
import { ProvisionerError } from "../types.ts";
import { type Failure, isRetryable, toFailure, wasRejected } from "./failures.ts";

export const NEON_API_BASE_URL = "https://console.neon.tech/api/v2";

export interface NeonRetryOptions {
  /** Total tries per API call, the first included. Default 5. */
  readonly attempts?: number;
  /** First backoff delay; doubles per retry, with jitter. Default 1000 ms. */
  readonly baseDelayMs?: number;
  /** Cap on a backoff delay (a server's `Retry-After` is honoured as given). Default 20000 ms. */
  readonly maxDelayMs?: number;
}

export interface NeonClientOptions {
  readonly apiKey: string;
  /** Neon API base URL. Default `https://console.neon.tech/api/v2`. */
  readonly baseURL?: string;
  readonly retry?: NeonRetryOptions;
  /** Interval between polls of a running operation. Default 1000 ms. */
  readonly operationPollMs?: number;
  /** How long one operation may run before the step fails with `operation_failed`. Default 120000 ms. */
  readonly operationTimeoutMs?: number;
  /** Timeout of one HTTP request to the Neon API. Default 30000 ms. */
  readonly requestTimeoutMs?: number;
  /** Injectable for tests. Default: a `setTimeout` promise. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The API and the settings `callNeon` and `waitForOperations` work with, defaults applied. */
export interface NeonClient {
  readonly api: Api<unknown>;
  readonly apiKey: string;
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly pollMs: number;
  readonly operationTimeoutMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

export function createNeonClient(options: NeonClientOptions): NeonClient {
  if (!options.apiKey) throw new ProvisionerError("invalid_input", "the neon provisioner needs an API key");
  return {
    apiKey: options.apiKey,
    attempts: Math.max(1, options.retry?.attempts ?? 5),
    baseDelayMs: options.retry?.baseDelayMs ?? 1_000,
    maxDelayMs: options.retry?.maxDelayMs ?? 20_000,
    pollMs: options.operationPollMs ?? 1_000,
    operationTimeoutMs: options.operationTimeoutMs ?? 120_000,
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    api: createApiClient({
      apiKey: options.apiKey,
      baseURL: options.baseURL ?? NEON_API_BASE_URL,
      adapter: "fetch",
      timeout: options.requestTimeoutMs ?? 30_000,
    }),
  };
}

/** Removes the API key and passwords from text that may reach a message or a log. */
function redact(client: NeonClient, text: string): string {
  const withoutKey = client.apiKey ? text.split(client.apiKey).join("[redacted]") : text;
  return redactSecrets(withoutKey)
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)[^@\s]*@/gi, "$1[redacted]@")
    .replace(/(password=)[^&\s]+/gi, "$1[redacted]")
    .slice(0, 300);
}

function upstreamError(client: NeonClient, label: string, failure: Failure, tries: number): ProvisionerError {
  return new ProvisionerError(
    "upstream_failed",
    redact(
      client,
      `Neon API ${label} failed` +
        (failure.status === undefined ? "" : ` with HTTP ${failure.status}`) +
        (tries > 1 ? ` after ${tries} attempts` : "") +
        (failure.detail ? `: ${failure.detail}` : ""),
    ),
  );
}

/** Delay before retry number `retry` (1-based): the server's `Retry-After`, else capped exponential with jitter. */
function backoff(client: NeonClient, retry: number, failure: Failure): number {
  if (failure.retryAfterMs !== undefined) return failure.retryAfterMs;
  const ceiling = Math.min(client.maxDelayMs, client.baseDelayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * One API call with retries on 429, 423, 5xx and network errors. For calls that change
 * something, `recover` runs before a retry whose failed attempt may have taken effect (5xx,
 * network error) and on 409; when it finds the result, that ends the call instead of a second
 * create. `notFound` turns a 404 into a value instead of an error.
 */
export async function callNeon<T, N = never>(
  client: NeonClient,
  label: string,
  send: () => Promise<T>,
  opts: { recover?: () => Promise<T | undefined>; notFound?: () => N } = {},
): Promise<T | N> {
  let needsRecovery = false;
  for (let attempt = 1; ; attempt++) {
    if (needsRecovery && opts.recover) {
      const found = await opts.recover();
      if (found !== undefined) return found;
    }
    try {
      return await send();
    } catch (error) {
      const failure = toFailure(error);
      if (failure.status === 404 && opts.notFound) return opts.notFound();
      if (failure.status === 409 && opts.recover) {
        const found = await opts.recover();
        if (found !== undefined) return found;
      }
      if (!isRetryable(failure) || attempt >= client.attempts) throw upstreamError(client, label, failure, attempt);
      needsRecovery = !wasRejected(failure);
      await client.sleep(backoff(client, attempt, failure));
    }
  }
}

const OPERATION_DONE = new Set<string>(["finished", "skipped"]);
const OPERATION_FAILED = new Set<string>(["failed", "error", "cancelled", "cancelling"]);

/** Waits until each operation finished; a failed, cancelled or timed-out one fails the step. */
export async function waitForOperations(
  client: NeonClient,
  projectId: string,
  operations: readonly Operation[] | undefined,
): Promise<void> {
  const timeoutMs = client.operationTimeoutMs;
  for (const initial of operations ?? []) {
    let operation = initial;
    const started = Date.now();
    let waited = 0;
    for (;;) {
      if (OPERATION_DONE.has(operation.status)) break;
      if (OPERATION_FAILED.has(operation.status)) {
        throw new ProvisionerError(
          "operation_failed",
          redact(
            client,
            `Neon operation ${operation.id} (${operation.action}) ended ${operation.status}` +
              (operation.error ? `: ${operation.error}` : ""),
          ),
        );
      }
      if (waited >= timeoutMs || Date.now() - started >= timeoutMs) {
        throw new ProvisionerError(
          "operation_failed",
          `Neon operation ${operation.id} (${operation.action}) still ${operation.status} after ${timeoutMs} ms`,
        );
      }
      await client.sleep(client.pollMs);
      waited += client.pollMs;
      operation = await callNeon(client, "GET /projects/{project_id}/operations/{operation_id}", async () => {
        const { data } = await client.api.getProjectOperation(projectId, initial.id);
        return data.operation;
      });
    }
  }
}
