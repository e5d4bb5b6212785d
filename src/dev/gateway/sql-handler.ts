/**
 * One POST /sql, start to finish: read the bounded body, find and check the target Postgres from
 * `Neon-Connection-String`, run the query or the batch (in one transaction, rolled back whole on
 * a failure, as on Neon) on a pooled client, and encode the answer. Failures are classified into
 * the status and body Neon would answer with. No HTTP routing here: see server.ts.
 */
import type { IncomingMessage } from "node:http";
import type pg from "pg";
import { isPostgresError, type PoolManager } from "./pools.ts";
import {
  beginStatement,
  checkTarget,
  errorBody,
  GatewayError,
  parseBatchOptions,
  parseRequestBody,
  parseResponseOptions,
  type QuerySpec,
  type ResultShape,
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

async function runQuery(client: pg.PoolClient, spec: QuerySpec): Promise<ResultShape> {
  // Extended protocol always, as Neon does: one statement per query, parameters bound server-side.
  const result = await client.query({
    text: spec.query,
    values: spec.params as unknown[],
    rowMode: "array",
    queryMode: "extended",
  } as pg.QueryArrayConfig);
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows as (string | null)[][],
    fields: result.fields.map((field) => ({ ...field, format: field.format ?? "text" })),
  };
}

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

  const payload = await config.pools.withClient(target, async (client) => {
    if (body.kind === "single") return shapeResult(await runQuery(client, body.query), shape);
    await client.query(beginStatement(batchOptions ?? parseBatchOptions({})));
    try {
      const results = [];
      for (const spec of body.queries) results.push(shapeResult(await runQuery(client, spec), shape));
      await client.query("COMMIT");
      return { results };
    } catch (error) {
      // A failing statement rolls the whole batch back, as on Neon.
      await client.query("ROLLBACK");
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
