/**
 * A small client for the admin API. Node cannot resolve `*.localhost` on these machines and its
 * `fetch` drops a hand-set Host header, so requests to a `.localhost` host go to 127.0.0.1 through
 * node:http with the Host header set explicitly.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface Problem {
  readonly status: number;
  readonly code: string;
  readonly title?: string;
  readonly detail?: string;
  readonly errors?: readonly { path: string; message: string }[];
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.code}: ${problem.detail ?? problem.title ?? `HTTP ${problem.status}`}`);
    this.name = "ApiError";
  }
}

export class UnreachableError extends Error {
  override readonly name = "UnreachableError";
}

export interface AdminClient {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export function createAdminClient(baseUrl: string, token: string, timeoutMs = 120_000): AdminClient {
  const base = new URL(baseUrl);
  const loopbackAlias = base.hostname === "localhost" || base.hostname.endsWith(".localhost");
  return {
    call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const url = new URL(path, base);
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      return new Promise<T>((resolve, reject) => {
        const req = send(
          {
            protocol: url.protocol,
            host: loopbackAlias ? "127.0.0.1" : url.hostname,
            port: url.port || (url.protocol === "https:" ? 443 : 80),
            path: `${url.pathname}${url.search}`,
            method,
            timeout: timeoutMs,
            headers: {
              host: url.host,
              authorization: `Bearer ${token}`,
              accept: "application/json",
              ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString("utf8");
              let parsed: unknown;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                parsed = undefined;
              }
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) resolve(parsed as T);
              else {
                const problem = (parsed ?? {}) as Partial<Problem>;
                reject(new ApiError({ ...problem, status, code: problem.code ?? `http_${status}` } as Problem));
              }
            });
            res.on("error", reject);
          },
        );
        req.on("timeout", () =>
          req.destroy(new UnreachableError(`the admin API at ${base.origin} did not answer within ${timeoutMs} ms`)),
        );
        req.on("error", (error: NodeJS.ErrnoException) => {
          if (error instanceof UnreachableError) reject(error);
          else
            reject(
              new UnreachableError(
                `cannot reach the admin API at ${base.origin} (${error.code ?? error.message}); is \`npm run dev\` running?`,
              ),
            );
        });
        if (payload) req.write(payload);
        req.end();
      });
    },
  };
}
