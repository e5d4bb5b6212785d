/**
 * One POST /sql, start to finish: read the bounded body, find and check the target Postgres from
 * `Neon-Connection-String`, run the query or the batch (in one transaction, rolled back whole on
 * a failure, as on Neon) on a pooled client, and encode the answer. Failures are classified into
 * the status and body Neon would answer with. No HTTP routing here: see server.ts.
 */
import type { IncomingMessage } from "node:http";
import { isPostgresError, type PoolManager } from "./pools.ts";
import {
  beginStatement,
  checkTarget,
  errorBody,
  GatewayError,
  parseBatchOptions,
  parseRequestBody,
  parseResponseOptions,
  shapeResult,
  type Target,
} from "./protocol.ts";
import { readBody } from "./responses.ts";
import type { TargetCache } from "./target-cache.ts";

export interface SqlHandlerConfig {
  readonly pools: PoolManager;
  readonly targets: TargetCache;
  readonly allowed: ReadonlySet<string> | "any";
  readonly maxBodyBytes: number;
  readonly maxResponseBytes: number;
}

/**
 * A query that may ask for COPY data gets a connection of its own: Postgres ignores the Syncs sent
 * during COPY FROM STDIN, so a query pipelined behind it would be read as bad COPY input. The test is
 * deliberately loose (any "copy" in the text): a false match only costs the pipelining.
 */
const MAY_COPY = /copy/i;

/** Connection failures (refused, reset, timed out) are the upstream's fault: 502, not a 400. */
export function classify(error: unknown, target: Target | undefined): { status: number; body: Record<string, string> } {
  if (error instanceof GatewayError)
    return { status: error.status, body: { message: error.message, code: error.code } };
  if (isPostgresError(error)) return { status: 400, body: errorBody(error) };
  const where = target ? ` at ${target.host}:${target.port}` : "";
  const reason =
    error instanceof Error && "code" in error
      ? String(error.code)
      : error instanceof Error
        ? error.message
        : "unknown error";
  return { status: 502, body: { message: `could not reach Postgres${where}: ${reason}`, code: "08006" } };
}

/** Answers one POST /sql; `onTarget` learns the target as soon as it is known, for logs. */
export async function handleSql(
  config: SqlHandlerConfig,
  request: IncomingMessage,
  onTarget: (target: Target) => void,
): Promise<Buffer> {
  // Read the (bounded) body first so an early refusal never leaves unread bytes on the socket.
  const text = await readBody(request, config.maxBodyBytes);
  const target = config.targets.parse(request.headers);
  onTarget(target);
  checkTarget(target, config.allowed);
  const shape = parseResponseOptions(request.headers);
  const body = parseRequestBody(text);
  const batchOptions = body.kind === "batch" ? parseBatchOptions(request.headers) : undefined;

  const { pools } = config;
  const payload =
    body.kind === "single" && !MAY_COPY.test(body.query.query)
      ? shapeResult(await pools.query(target, body.query.query, body.query.params), shape)
      : await pools.exclusive(target, async (session) => {
          if (body.kind === "single") {
            return shapeResult(await session.query(body.query.query, body.query.params), shape);
          }
          await session.query(beginStatement(batchOptions ?? parseBatchOptions({})), []);
          try {
            const results = [];
            for (const spec of body.queries)
              results.push(shapeResult(await session.query(spec.query, spec.params), shape));
            await session.query("COMMIT", []);
            return { results };
          } catch (error) {
            // A failing statement rolls the whole batch back, as on Neon.
            await session.query("ROLLBACK", []).catch(() => {});
            throw error;
          }
        });
  // Encoded once: the size check and the Content-Length use the same bytes that are sent.
  const json = Buffer.from(JSON.stringify(payload));
  if (json.length > config.maxResponseBytes) {
    throw new GatewayError(400, "54000", `response is too large (max is ${config.maxResponseBytes} bytes)`);
  }
  return json;
}
