/**
 * The console's trust boundary, as middleware: response headers (a strict CSP: scripts and styles
 * from this origin only, nothing inline, no framing), the signed-in identity (a session cookie, or
 * Cloudflare Access in production), and CSRF defence for every state-changing request: the Origin /
 * Sec-Fetch-Site headers must say same-origin (OWASP CSRF cheat sheet, "Verifying origin with
 * standard headers"), and the form must echo the session's CSRF token. Identities land in the same
 * `adminSub` / `adminScopes` variables the admin API uses, so `requireScope` guards pages and actions
 * exactly as it guards the API.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { AppError } from "../../shared/errors.ts";
import type { AdminEnv } from "../admin/auth.ts";
import { ACCESS_HEADER, accessConfigured, verifyAccess } from "./access.ts";
import { type ConsoleSession, readSession, startSession } from "./session.ts";

export type ConsoleEnv = AdminEnv & { Variables: AdminEnv["Variables"] & { session: ConsoleSession } };

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export const consoleHeaders = () =>
  createMiddleware<AdminEnv>(async function consoleHeadersMiddleware(c, next) {
    await next();
    c.header("content-security-policy", CSP);
    c.header("x-content-type-options", "nosniff");
    // Not "no-referrer": under it a browser sends `Origin: null` on the console's own form POSTs,
    // which sameOrigin() would then refuse. "same-origin" still leaks nothing to other sites.
    c.header("referrer-policy", "same-origin");
    c.header("x-frame-options", "DENY");
    if (!c.res.headers.has("cache-control")) c.header("cache-control", "no-store");
  });

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** 403 `csrf_failed` for a state-changing request a browser says came from another origin. */
export const sameOrigin = () =>
  createMiddleware<AdminEnv>(async function sameOriginMiddleware(c, next) {
    if (UNSAFE.has(c.req.method)) {
      const origin = c.req.header("origin");
      const site = c.req.header("sec-fetch-site");
      if ((origin && origin !== new URL(c.req.url).origin) || (site && site !== "same-origin" && site !== "none")) {
        c.get("log").log("warn", "console_cross_origin", { site: site ?? null });
        throw new AppError(403, "csrf_failed", "Cross-origin requests are refused.");
      }
    }
    await next();
  });

/** The identity behind this request: Access (production) or the dev sign-in's session. */
async function identify<E extends AdminEnv>(c: Context<E>): Promise<ConsoleSession | undefined> {
  const session = await readSession(c);
  if (!accessConfigured(c.env)) return session;
  // Behind Access every request carries a fresh assertion; the session must belong to the same identity.
  const access = await verifyAccess(c.env, c.req.header(ACCESS_HEADER));
  if (!access) return undefined;
  if (session?.via === "access" && session.sub === access.sub) return session;
  return startSession(c, { sub: access.sub, scopes: access.scopes, via: "access" });
}

/** Signed in, or: a page goes to the sign-in form, anything else is 401 `unauthorized`. */
export const consoleAuth = () =>
  createMiddleware<ConsoleEnv>(async function consoleAuthMiddleware(c, next) {
    const session = await identify(c);
    if (!session) {
      if (c.req.method === "GET" && !accessConfigured(c.env)) return c.redirect("/sign-in", 303);
      throw new AppError(401, "unauthorized", "Sign in first.");
    }
    c.set("session", session);
    c.set("adminSub", session.sub);
    c.set("adminScopes", new Set(session.scopes));
    c.set("log", c.get("log").with({ admin: session.sub }));
    await next();
  });

/** Constant-time string comparison through digests (equal lengths for timingSafeEqual). */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (s: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** 403 `csrf_failed` unless a state-changing request's form echoes the session's CSRF token. */
export const csrfToken = () =>
  createMiddleware<ConsoleEnv>(async function csrfTokenMiddleware(c, next) {
    if (UNSAFE.has(c.req.method)) {
      const type = c.req.header("content-type") ?? "";
      const form = type.includes("form") ? await c.req.parseBody() : {};
      const sent = form._csrf;
      if (typeof sent !== "string" || !(await sameSecret(sent, c.get("session").csrf))) {
        c.get("log").log("warn", "console_csrf_missing", {});
        throw new AppError(403, "csrf_failed", "The form's CSRF token is missing or wrong: reload the page.");
      }
    }
    await next();
  });
