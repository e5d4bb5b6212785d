/**
 * Encryption key rotation: how many connection strings at rest are under each key id, and
 * re-encrypting a batch of them under the current key. Counting needs tenants:read, rewriting
 * secrets tenants:write.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { keyStatus, reencryptSecrets } from "../../../control/keys.ts";
import { type AdminEnv, requireScope } from "../auth.ts";
import { controlDeps } from "../request-deps.ts";
import { json, KeyStatus, problems, ReencryptQuery, ReencryptReport } from "../schemas.ts";

export const keyRoutes = {
  status: createRoute({
    method: "get",
    path: "/v1/keys",
    summary: "Connection strings at rest per encryption key id (rotation progress)",
    middleware: requireScope("tenants:read"),
    responses: { 200: json(KeyStatus, "Secrets per key id"), ...problems },
  }),
  reencrypt: createRoute({
    method: "post",
    path: "/v1/keys/reencrypt",
    summary: "Re-encrypt a batch of tenants' connection strings under the current key",
    middleware: requireScope("tenants:write"),
    request: { query: ReencryptQuery },
    responses: { 200: json(ReencryptReport, "What this batch did, and the counts after it"), ...problems },
  }),
};

export function keysRouter() {
  const router = new OpenAPIHono<AdminEnv>();
  router.openapi(keyRoutes.status, async (c) => c.json(await keyStatus(controlDeps(c)), 200));
  router.openapi(keyRoutes.reencrypt, async (c) =>
    c.json(await reencryptSecrets(controlDeps(c), c.req.valid("query")), 200),
  );
  return router;
}
