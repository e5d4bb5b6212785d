/**
 * Who may talk to the dev gateway: a pure decision over the request's `Host` and `Origin` headers.
 *
 * The gateway runs any SQL it is sent, as whatever role the connection string names, so a web page
 * open in the developer's browser must not be able to reach it. Two browser attacks matter:
 * a cross-origin request (any page can POST to 127.0.0.1), and DNS rebinding (a page on
 * `evil.example` whose name later resolves to 127.0.0.1, which makes its requests same-origin;
 * the browser still sends `Host: evil.example`). So the Host must name a loopback address (or the
 * address the gateway was told to listen on), and a request that carries an `Origin` must come
 * from a loopback origin or one the developer allowed explicitly (`GATEWAY_ALLOWED_ORIGINS`).
 * CORS headers are sent only to allowed origins: by default there are none, and the browser
 * refuses every cross-origin read and every preflighted request (Fetch standard, "CORS protocol").
 * Non-browser clients (the Worker's `fetch`, `pg` tools, curl) send no `Origin` and pass.
 */

export type BrowserRefusal = "host_not_loopback" | "origin_not_allowed";

export type BrowserDecision =
  | { readonly ok: true; readonly corsHeaders: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly reason: BrowserRefusal };

export interface BrowserPolicy {
  /** Exact origins (`scheme://host[:port]`) granted CORS access, lowercased. */
  readonly allowedOrigins: ReadonlySet<string>;
  /** Host names accepted in `Host` besides loopback ones (the configured listen address). */
  readonly extraHosts: ReadonlySet<string>;
}

const CORS_ALLOW_HEADERS =
  "Authorization, Content-Type, Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, Neon-Batch-Isolation-Level, Neon-Batch-Read-Only, Neon-Batch-Deferrable";

/** Parses a comma-separated origin list (the `GATEWAY_ALLOWED_ORIGINS` format); blanks ignored. */
export function parseOriginList(text: string | undefined): string[] {
  return (text ?? "")
    .split(",")
    .map((origin) => origin.trim().toLowerCase().replace(/\/+$/, ""))
    .filter((origin) => origin !== "");
}

export function browserPolicy(allowedOrigins: readonly string[], listenHost: string | undefined): BrowserPolicy {
  const extraHosts = new Set<string>();
  // 0.0.0.0 and :: are "every interface", not a name a client would send.
  if (listenHost && listenHost !== "0.0.0.0" && listenHost !== "::") extraHosts.add(hostName(listenHost));
  return { allowedOrigins: new Set(parseOriginList(allowedOrigins.join(","))), extraHosts };
}

/** The host name of a `Host` header value or an authority: port and IPv6 brackets dropped, lowercased. */
function hostName(authority: string): string {
  const text = authority.trim().toLowerCase();
  if (text.startsWith("[")) return text.slice(1, Math.max(1, text.indexOf("]")));
  const colon = text.indexOf(":");
  // More than one colon: a bare IPv6 address, which has no port.
  if (colon !== -1 && text.indexOf(":", colon + 1) === -1) return text.slice(0, colon);
  return text;
}

/** `localhost`, `*.localhost` (RFC 6761 §6.3), 127.0.0.0/8 and ::1. */
export function isLoopbackName(name: string): boolean {
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (name === "::1" || name === "0:0:0:0:0:0:0:1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackName(hostName(url.host));
  } catch {
    return false;
  }
}

/**
 * Decides on one request from its `Host` and `Origin` headers. A missing Host (HTTP/1.0) is
 * accepted: browsers always send one. `Origin: null` (sandboxed frames, file: pages) is refused.
 */
export function checkBrowserAccess(
  policy: BrowserPolicy,
  host: string | undefined,
  origin: string | undefined,
): BrowserDecision {
  if (host !== undefined) {
    const name = hostName(host);
    if (!isLoopbackName(name) && !policy.extraHosts.has(name)) return { ok: false, reason: "host_not_loopback" };
  }
  if (origin === undefined) return { ok: true, corsHeaders: {} };
  const normalized = origin.trim().toLowerCase();
  if (policy.allowedOrigins.has(normalized)) {
    return {
      ok: true,
      corsHeaders: {
        "access-control-allow-origin": origin.trim(),
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": CORS_ALLOW_HEADERS,
        "access-control-max-age": "600",
        vary: "Origin",
      },
    };
  }
  if (isLoopbackOrigin(normalized)) return { ok: true, corsHeaders: {} };
  return { ok: false, reason: "origin_not_allowed" };
}
