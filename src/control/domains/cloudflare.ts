/**
 * The few Cloudflare for SaaS endpoints the control plane uses (custom hostnames, their quota, the
 * zone's fallback origin), over plain `fetch`. Not the `cloudflare` SDK: it would add a large
 * dependency (and its own retry policy) to the Worker bundle for six calls, and a plain client lets
 * the caller count every subrequest, which the cron's budget needs. 429 and 5xx answers (and network
 * failures) are retried with exponential backoff, honouring `retry-after`; anything else is final.
 * API reference: https://developers.cloudflare.com/api/resources/custom_hostnames/
 */
import { AppError } from "../../shared/errors.ts";

/** A custom hostname as the API returns it (the fields used). */
export interface CustomHostname {
  readonly id: string;
  readonly hostname: string;
  readonly status: string;
  readonly ssl?: {
    readonly status?: string;
    readonly method?: string;
    readonly validation_records?: readonly {
      txt_name?: string;
      txt_value?: string;
      http_url?: string;
      http_body?: string;
    }[];
    readonly validation_errors?: readonly { message: string }[];
  };
  readonly ownership_verification?: { readonly type?: string; readonly name?: string; readonly value?: string };
  readonly ownership_verification_http?: { readonly http_url?: string; readonly http_body?: string };
  readonly verification_errors?: readonly string[];
  readonly custom_metadata?: Record<string, string>;
}

export type ValidationMethod = "http" | "txt";

export interface CloudflareOptions {
  readonly apiToken: string;
  readonly zoneId: string;
  /** Default https://api.cloudflare.com/client/v4 (the fake API in dev and tests). */
  readonly baseUrl?: string | undefined;
  readonly method?: ValidationMethod | undefined;
  /** Attempts per call, first included (default 4). */
  readonly attempts?: number | undefined;
  readonly fetch?: typeof fetch | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

export interface CustomHostnameApi {
  create(hostname: string, metadata: Record<string, string>): Promise<CustomHostname>;
  /** undefined when Cloudflare has no such custom hostname (404). */
  get(id: string): Promise<CustomHostname | undefined>;
  /** One page (50) of the zone's custom hostnames; `more` while pages remain. */
  list(page: number): Promise<{ items: CustomHostname[]; more: boolean }>;
  /** PATCH with the same `ssl`: re-triggers validation. */
  revalidate(id: string): Promise<CustomHostname>;
  /** Deleting one that is already gone succeeds. */
  delete(id: string): Promise<void>;
  quota(): Promise<{ allocated: number; used: number }>;
  /** The CNAME target customers point at. */
  fallbackOrigin(): Promise<string>;
  /** Requests sent so far, retries included (each is a subrequest of the invocation). */
  readonly requests: () => number;
}

interface Envelope<T> {
  success: boolean;
  errors?: { code: number; message: string }[];
  result: T;
  result_info?: { page: number; per_page: number; total_pages?: number; total_count?: number };
}

const retryable = (status: number) => status === 429 || status >= 500;

function refused(status: number, data: Envelope<unknown> | undefined): AppError {
  const codes = (data?.errors ?? []).map((e) => e.code);
  // 1406: "Duplicate custom hostname found": someone (maybe another zone's tenant) holds it.
  if (codes.includes(1406)) return new AppError(409, "conflict", "This hostname is already a custom hostname.");
  return new AppError(502, "cloudflare_rejected", "The Cloudflare API refused the request.", {
    extras: { upstream: { status, codes } },
  });
}

export function createCloudflareClient(options: CloudflareOptions): CustomHostnameApi {
  const base = `${(options.baseUrl || "https://api.cloudflare.com/client/v4").replace(/\/$/, "")}/zones/${encodeURIComponent(options.zoneId)}/custom_hostnames`;
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const attempts = options.attempts ?? 4;
  const ssl = { method: options.method ?? "txt", type: "dv", settings: { min_tls_version: "1.2" } };
  let requests = 0;

  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; data?: Envelope<T> }> {
    for (let attempt = 1; ; attempt++) {
      requests += 1;
      let response: Response | undefined;
      try {
        response = await doFetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${options.apiToken}`, "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch {
        response = undefined;
      }
      if (response && !retryable(response.status)) {
        const data = (await response.json().catch(() => undefined)) as Envelope<T> | undefined;
        return { status: response.status, data };
      }
      await response?.body?.cancel();
      if (attempt >= attempts)
        throw new AppError(502, "cloudflare_unavailable", "The Cloudflare API did not answer; try again.", {
          extras: { upstream: { status: response?.status ?? 0 } },
        });
      const after = Number(response?.headers.get("retry-after"));
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 30) * 1000 : 250 * 2 ** (attempt - 1));
    }
  }

  async function ok<T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    const { status, data } = await call<T>(method, path, body);
    if (status < 300 && data?.success) return data;
    throw refused(status, data);
  }

  return {
    create: async (hostname, metadata) =>
      (await ok<CustomHostname>("POST", "", { hostname, ssl, custom_metadata: metadata })).result,
    async get(id) {
      const { status, data } = await call<CustomHostname>("GET", `/${encodeURIComponent(id)}`);
      if (status === 404) return undefined;
      if (status < 300 && data?.success) return data.result;
      throw refused(status, data);
    },
    async list(page) {
      const data = await ok<CustomHostname[]>("GET", `?page=${page}&per_page=50`);
      const info = data.result_info;
      const pages = info?.total_pages ?? Math.ceil((info?.total_count ?? 0) / (info?.per_page || 50));
      return { items: data.result, more: page < pages };
    },
    revalidate: async (id) => (await ok<CustomHostname>("PATCH", `/${encodeURIComponent(id)}`, { ssl })).result,
    async delete(id) {
      const { status, data } = await call<unknown>("DELETE", `/${encodeURIComponent(id)}`);
      if (status === 404 || (status < 300 && data?.success)) return;
      throw refused(status, data);
    },
    quota: async () => (await ok<{ allocated: number; used: number }>("GET", "/quota")).result,
    fallbackOrigin: async () => (await ok<{ origin: string }>("GET", "/fallback_origin")).result.origin,
    requests: () => requests,
  };
}
