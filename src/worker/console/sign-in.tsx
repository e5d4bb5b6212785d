/**
 * Signing in and out. In dev (no Cloudflare Access configured) the form takes an admin token, the
 * same one the CLI uses, verified exactly as the admin API verifies it (its issuer, audience and
 * `scope` claim); the session then carries the token's subject and scopes, not the token. With
 * Access configured the form is off: Access itself is the sign-in (guard.ts).
 */
import { Hono } from "hono";
import { AppError } from "../../shared/errors.ts";
import { verifyJwt } from "../auth/verify.ts";
import { accessConfigured } from "./access.ts";
import type { ConsoleEnv } from "./guard.ts";
import { Layout } from "./layout.tsx";
import { endSession, startSession } from "./session.ts";

async function verifyAdminToken(env: Env, token: string) {
  return verifyJwt(
    token,
    {
      issuer: env.ADMIN_JWT_ISSUER,
      audience: env.ADMIN_JWT_AUDIENCE,
      jwksUrl: env.ADMIN_JWKS_URL,
      secret: env.ADMIN_JWT_SECRET,
    },
    { issuer: env.ADMIN_JWT_ISSUER, audience: env.ADMIN_JWT_AUDIENCE, requiredClaims: ["scope"] },
  );
}

function SignInForm(props: { failed?: boolean }) {
  return (
    <Layout title="Sign in">
      {props.failed ? (
        <p class="error" role="alert" id="sign-in-error">
          That token was not accepted.
        </p>
      ) : null}
      <p>
        Paste an admin token (<code>npx tenantry token --admin</code> prints one in dev).
      </p>
      <form method="post" action="/sign-in" class="signin">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  );
}

export function signInRoutes() {
  const routes = new Hono<ConsoleEnv>();
  routes.get("/sign-in", (c) => {
    if (accessConfigured(c.env)) return c.redirect("/", 303);
    return c.html(<SignInForm />);
  });
  routes.post("/sign-in", async (c) => {
    if (accessConfigured(c.env)) throw new AppError(404, "not_found", "Sign-in goes through Cloudflare Access.");
    const form = await c.req.parseBody();
    const result = await verifyAdminToken(c.env, typeof form.token === "string" ? form.token.trim() : "");
    if (!result.ok) {
      c.get("log").log("info", "console_sign_in_rejected", { reason: result.reason });
      return c.html(<SignInForm failed />, 401);
    }
    const scope = result.payload.scope;
    await startSession(c, {
      sub: result.payload.sub as string,
      scopes: typeof scope === "string" ? scope.split(" ").filter(Boolean) : [],
      via: "token",
    });
    return c.redirect("/", 303);
  });
  return routes;
}

export function signOutRoute() {
  const routes = new Hono<ConsoleEnv>();
  routes.post("/sign-out", (c) => {
    endSession(c);
    return c.redirect(accessConfigured(c.env) ? "/cdn-cgi/access/logout" : "/sign-in", 303);
  });
  return routes;
}
