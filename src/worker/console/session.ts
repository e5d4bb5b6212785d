/**
 * The console's session: a short-lived HS256 JWT (jose) in an `HttpOnly; Secure; SameSite=Strict`
 * `__Host-` cookie, signed with CONSOLE_SESSION_SECRET. It carries who signed in, their admin scopes
 * and the session's CSRF token (synchronizer pattern: every form echoes it; OWASP CSRF cheat sheet).
 * Signed, not encrypted: it holds no secret the operator may not see; the CSRF token is only useful
 * together with the HttpOnly cookie, which script on another origin cannot read.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { jwtVerify, SignJWT } from "jose";
import { AppError } from "../../shared/errors.ts";

export const SESSION_COOKIE = "__Host-tenantry-console";
const SESSION_TTL_S = 30 * 60;
const ISSUER = "tenantry-console";
const MIN_SECRET_BYTES = 32;

export interface ConsoleSession {
  /** The signed-in identity: the audit log's actor. */
  readonly sub: string;
  readonly scopes: readonly string[];
  readonly csrf: string;
  /** How the identity was proven: a dev admin token, or Cloudflare Access. */
  readonly via: "token" | "access";
}

function sessionKey(env: Env): Uint8Array {
  const key = new TextEncoder().encode(env.CONSOLE_SESSION_SECRET ?? "");
  if (key.length < MIN_SECRET_BYTES)
    throw new AppError(500, "internal_error", "The console is not configured (CONSOLE_SESSION_SECRET).");
  return key;
}

const randomToken = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");

/** Starts a session for `identity` (a fresh CSRF token) and sets its cookie. */
export async function startSession(c: Context, identity: Omit<ConsoleSession, "csrf">): Promise<ConsoleSession> {
  const session = { ...identity, csrf: randomToken() };
  const jwt = await new SignJWT({ scopes: session.scopes, csrf: session.csrf, via: session.via })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(session.sub)
    .setIssuer(ISSUER)
    .setAudience(c.env.ADMIN_HOST)
    .setIssuedAt()
    .setExpirationTime(`${SESSION_TTL_S}s`)
    .sign(sessionKey(c.env));
  setCookie(c, SESSION_COOKIE, jwt, {
    path: "/",
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: SESSION_TTL_S,
  });
  return session;
}

/** The session in the request's cookie, or undefined when there is none or it does not verify. */
export async function readSession(c: Context): Promise<ConsoleSession | undefined> {
  const jwt = getCookie(c, SESSION_COOKIE);
  if (!jwt) return undefined;
  try {
    const { payload } = await jwtVerify(jwt, sessionKey(c.env), {
      algorithms: ["HS256"],
      issuer: ISSUER,
      audience: c.env.ADMIN_HOST,
      requiredClaims: ["exp", "sub", "csrf"],
    });
    const { sub, scopes, csrf, via } = payload as Record<string, unknown>;
    if (typeof sub !== "string" || typeof csrf !== "string" || !Array.isArray(scopes)) return undefined;
    return {
      sub,
      csrf,
      scopes: scopes.filter((s) => typeof s === "string"),
      via: via === "access" ? "access" : "token",
    };
  } catch (error) {
    if (error instanceof AppError) throw error;
    return undefined;
  }
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
}
