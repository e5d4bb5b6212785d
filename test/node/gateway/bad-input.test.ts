/**
 * Bad input, case by case: every refusal is a JSON body with a message and a SQLSTATE-like code
 * under the right HTTP status, and the gateway keeps answering afterwards.
 *
 * Nothing here may reach a non-loopback address: the one non-loopback host used
 * (db.example.com) must be refused before the gateway connects anywhere.
 */
import { NeonDbError, neon } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../../../src/dev/gateway/server.ts";
import { freePort } from "../../../src/dev/postgres.ts";
import { createTestDatabase, dropTestDatabase, gatewayUrl, type TestDatabase, useGatewayForNeon } from "../support.ts";

let db: TestDatabase;
/** A loopback port with nothing listening on it. */
let deadPort: number;

beforeAll(async () => {
  useGatewayForNeon();
  db = await createTestDatabase("bad");
  deadPort = await freePort();
});

afterAll(async () => {
  await dropTestDatabase(db);
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

/** Sends one request and parses the answer, which must be JSON whatever the status. */
async function send(url: string, init: RequestInit): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  expect(response.headers.get("content-type")).toBe("application/json");
  let body: unknown;
  expect(() => {
    body = JSON.parse(text);
  }, `body is not JSON: ${text}`).not.toThrow();
  expect(body).toBeTypeOf("object");
  return { status: response.status, headers: response.headers, body: body as Record<string, unknown> };
}

/** The gateway still serves a plain query for a valid connection string. */
async function expectHealthy(url: string): Promise<void> {
  const answer = await send(url, {
    method: "POST",
    headers: { "Neon-Connection-String": db.url },
    body: JSON.stringify({ query: "SELECT 1 AS one", params: [] }),
  });
  expect(answer.status).toBe(200);
  expect(answer.body.rows).toEqual([{ one: 1 }]);
}

interface Case {
  readonly name: string;
  /** Built lazily: the test database and dead port exist only once `beforeAll` has run. */
  readonly request: () => {
    readonly method?: string;
    readonly path?: string;
    readonly headers?: Record<string, string>;
    readonly body?: string;
  };
  readonly status: number;
  readonly code: string;
  /** A word the message must contain, when one is worth pinning. */
  readonly mentions?: string;
}

const conn = () => ({ "Neon-Connection-String": db.url });
const json = (value: unknown) => JSON.stringify(value);
const select1 = json({ query: "SELECT 1", params: [] });
const batch = json({ queries: [{ query: "SELECT 1", params: [] }] });

const CASES: readonly Case[] = [
  // Bodies that are not the protocol.
  {
    name: "malformed JSON",
    request: () => ({ headers: conn(), body: '{"query": "SELECT 1",' }),
    status: 400,
    code: "08P01",
    mentions: "JSON",
  },
  { name: "an empty body", request: () => ({ headers: conn(), body: "" }), status: 400, code: "08P01" },
  {
    name: "a JSON array body",
    request: () => ({ headers: conn(), body: json([{ query: "SELECT 1" }]) }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a JSON string body",
    request: () => ({ headers: conn(), body: json("SELECT 1") }),
    status: 400,
    code: "08P01",
  },
  { name: "a JSON null body", request: () => ({ headers: conn(), body: "null" }), status: 400, code: "08P01" },
  { name: "a JSON number body", request: () => ({ headers: conn(), body: "42" }), status: 400, code: "08P01" },
  {
    name: "queries not an array",
    request: () => ({ headers: conn(), body: json({ queries: { query: "SELECT 1", params: [] } }) }),
    status: 400,
    code: "08P01",
    mentions: "queries",
  },
  {
    name: "a batch item that is a string",
    request: () => ({ headers: conn(), body: json({ queries: ["SELECT 1"] }) }),
    status: 400,
    code: "08P01",
  },
  {
    name: "query not a string",
    request: () => ({ headers: conn(), body: json({ query: 42, params: [] }) }),
    status: 400,
    code: "08P01",
    mentions: "query",
  },
  {
    name: "query missing",
    request: () => ({ headers: conn(), body: json({ params: [] }) }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a batch query not a string",
    request: () => ({ headers: conn(), body: json({ queries: [{ query: ["SELECT 1"], params: [] }] }) }),
    status: 400,
    code: "08P01",
  },
  {
    name: "params not an array",
    request: () => ({ headers: conn(), body: json({ query: "SELECT $1", params: "x" }) }),
    status: 400,
    code: "22023",
    mentions: "params",
  },
  {
    name: "a nested object param",
    request: () => ({ headers: conn(), body: json({ query: "SELECT $1", params: [{ a: 1 }] }) }),
    status: 400,
    code: "22023",
    mentions: "params[0]",
  },
  {
    name: "a nested array param",
    request: () => ({ headers: conn(), body: json({ query: "SELECT $1, $2", params: [1, [1, 2]] }) }),
    status: 400,
    code: "22023",
    mentions: "params[1]",
  },
  {
    name: "a nested param in a batch",
    request: () => ({
      headers: conn(),
      body: json({
        queries: [
          { query: "SELECT 1", params: [] },
          { query: "SELECT $1", params: [{}] },
        ],
      }),
    }),
    status: 400,
    code: "22023",
    mentions: "queries[1]",
  },
  {
    name: "a number too large for a double",
    request: () => ({ headers: conn(), body: '{"query":"SELECT $1","params":[1e400]}' }),
    status: 400,
    code: "22023",
  },

  // Connection strings.
  {
    name: "a missing Neon-Connection-String",
    request: () => ({ body: select1 }),
    status: 400,
    code: "08P01",
    mentions: "Neon-Connection-String",
  },
  {
    name: "a connection string that is not a URL",
    request: () => ({ headers: { "Neon-Connection-String": "not a url" }, body: select1 }),
    status: 400,
    code: "08P01",
    mentions: "Neon-Connection-String",
  },
  {
    name: "a connection string with another scheme",
    request: () => ({ headers: { "Neon-Connection-String": "http://u:p@127.0.0.1/x" }, body: select1 }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a connection string without a database",
    request: () => ({ headers: { "Neon-Connection-String": "postgres://u:p@127.0.0.1:5432" }, body: select1 }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a connection string without a user",
    request: () => ({ headers: { "Neon-Connection-String": "postgres://127.0.0.1:5432/x" }, body: select1 }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a non-loopback host",
    request: () => ({ headers: { "Neon-Connection-String": "postgres://u:p@db.example.com/x" }, body: select1 }),
    status: 403,
    code: "28000",
    mentions: "db.example.com",
  },
  {
    name: "an unreachable Postgres",
    request: () => ({ headers: { "Neon-Connection-String": `postgres://u:p@127.0.0.1:${deadPort}/x` }, body: select1 }),
    status: 502,
    code: "08006",
  },
  {
    name: "a wrong password",
    request: () => ({ headers: { "Neon-Connection-String": withPassword(db.url, "wrong") }, body: select1 }),
    status: 400,
    code: "28P01",
  },
  {
    name: "a database that does not exist",
    request: () => ({ headers: { "Neon-Connection-String": withDatabase(db.url, "no_such_database") }, body: select1 }),
    status: 400,
    code: "3D000",
  },

  // Headers.
  {
    name: "an unknown Neon-Batch-Isolation-Level",
    request: () => ({ headers: { ...conn(), "Neon-Batch-Isolation-Level": "Chaos" }, body: batch }),
    status: 400,
    code: "22023",
    mentions: "Neon-Batch-Isolation-Level",
  },
  {
    name: "an inherited name as Neon-Batch-Isolation-Level",
    request: () => ({ headers: { ...conn(), "Neon-Batch-Isolation-Level": "toString" }, body: batch }),
    status: 400,
    code: "22023",
  },
  {
    name: "a lower-case Neon-Batch-Isolation-Level",
    request: () => ({ headers: { ...conn(), "Neon-Batch-Isolation-Level": "serializable" }, body: batch }),
    status: 400,
    code: "22023",
  },
  {
    name: "a Neon-Batch-Read-Only that is not a boolean",
    request: () => ({ headers: { ...conn(), "Neon-Batch-Read-Only": "yes" }, body: batch }),
    status: 400,
    code: "22023",
    mentions: "Neon-Batch-Read-Only",
  },
  {
    name: "a Neon-Array-Mode that is not a boolean",
    request: () => ({ headers: { ...conn(), "Neon-Array-Mode": "1" }, body: select1 }),
    status: 400,
    code: "22023",
    mentions: "Neon-Array-Mode",
  },

  // SQL that Postgres refuses.
  {
    name: "a SQL syntax error",
    request: () => ({ headers: conn(), body: json({ query: "SELEC 1", params: [] }) }),
    status: 400,
    code: "42601",
  },
  {
    name: "a SQL syntax error in a batch",
    request: () => ({
      headers: conn(),
      body: json({
        queries: [
          { query: "SELECT 1", params: [] },
          { query: "SELEC 2", params: [] },
        ],
      }),
    }),
    status: 400,
    code: "42601",
  },
  {
    name: "two statements in one query",
    request: () => ({ headers: conn(), body: json({ query: "SELECT 1; SELECT 2", params: [] }) }),
    status: 400,
    code: "42601",
  },
  {
    name: "too few params",
    request: () => ({ headers: conn(), body: json({ query: "SELECT $1::int, $2::int", params: [1] }) }),
    status: 400,
    code: "08P01",
  },
  {
    name: "a param of the wrong type",
    request: () => ({ headers: conn(), body: json({ query: "SELECT $1::int", params: ["twelve"] }) }),
    status: 400,
    code: "22P02",
  },
  {
    name: "a division by zero",
    request: () => ({ headers: conn(), body: json({ query: "SELECT 1 / 0", params: [] }) }),
    status: 400,
    code: "22012",
  },

  // Routes and methods.
  {
    name: "an unknown route",
    request: () => ({ path: "/nope", headers: conn(), body: select1 }),
    status: 404,
    code: "08P01",
  },
  { name: "GET /", request: () => ({ method: "GET", path: "/" }), status: 404, code: "08P01" },
  { name: "GET /sql", request: () => ({ method: "GET", headers: conn() }), status: 405, code: "08P01" },
  { name: "PUT /sql", request: () => ({ method: "PUT", headers: conn(), body: select1 }), status: 405, code: "08P01" },
  { name: "DELETE /sql", request: () => ({ method: "DELETE", headers: conn() }), status: 405, code: "08P01" },
];

function withPassword(url: string, password: string): string {
  const next = new URL(url);
  next.password = password;
  return next.toString();
}

function withDatabase(url: string, database: string): string {
  const next = new URL(url);
  next.pathname = `/${database}`;
  return next.toString();
}

describe("raw requests to the shared gateway", () => {
  it.each(CASES)("refuses $name with $status / $code", async ({ request, status, code, mentions }) => {
    const { method = "POST", path, headers = {}, body } = request();
    const url = path ? new URL(path, gatewayUrl()).toString() : gatewayUrl();
    const answer = await send(url, { method, headers, ...(body === undefined ? {} : { body }) });
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(answer.body.message).toBeTypeOf("string");
    expect(answer.body.message).not.toBe("");
    if (mentions) expect(answer.body.message).toContain(mentions);
    if (status === 405) expect(answer.headers.get("allow")).toContain("POST");
    await expectHealthy(gatewayUrl());
  });

  it("never leaks the password of a refused connection string", async () => {
    const answer = await send(gatewayUrl(), {
      method: "POST",
      headers: { "Neon-Connection-String": `postgres://u:hunter2-secret@127.0.0.1:${deadPort}/x` },
      body: select1,
    });
    expect(answer.status).toBe(502);
    expect(JSON.stringify(answer.body)).not.toContain("hunter2-secret");
  });
});

interface DriverCase {
  readonly name: string;
  readonly run: () => Promise<unknown>;
  /** The NeonDbError code (400s), or the HTTP status the driver puts in its message (other statuses). */
  readonly code?: string;
  readonly status?: number;
}

const DRIVER_CASES: readonly DriverCase[] = [
  { name: "a SQL syntax error", run: () => neon(db.url).query("SELEC 1"), code: "42601" },
  {
    name: "a failing statement in a transaction",
    run: () => {
      const sql = neon(db.url);
      return sql.transaction([sql`SELECT 1`, sql`SELECT 1 / 0`]);
    },
    code: "22012",
  },
  {
    name: "an unknown isolation level",
    run: () => {
      const sql = neon(db.url);
      return sql.transaction([sql`SELECT 1`], { isolationLevel: "Chaos" as "Serializable" });
    },
    code: "22023",
  },
  { name: "a wrong password", run: () => neon(withPassword(db.url, "wrong"))`SELECT 1`, code: "28P01" },
  {
    name: "a database that does not exist",
    run: () => neon(withDatabase(db.url, "no_such_db"))`SELECT 1`,
    code: "3D000",
  },
  { name: "a non-loopback host", run: () => neon("postgres://u:p@db.example.com/x")`SELECT 1`, status: 403 },
  { name: "an unreachable Postgres", run: () => neon(`postgres://u:p@127.0.0.1:${deadPort}/x`)`SELECT 1`, status: 502 },
];

describe("the neon() driver against the shared gateway", () => {
  it.each(DRIVER_CASES)("raises NeonDbError for $name", async ({ run, code, status }) => {
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NeonDbError);
    const neonError = error as NeonDbError;
    expect(neonError.message).not.toBe("");
    if (code !== undefined) expect(neonError.code).toBe(code);
    // The driver reads a JSON body only on a 400; other statuses end up in its message.
    if (status !== undefined) expect(neonError.message).toContain(`HTTP status ${status}`);
    expect(await neon(db.url)`SELECT 1 AS one`).toEqual([{ one: 1 }]);
  });
});

describe("a gateway with a 1 KiB body limit", () => {
  const LIMIT = 1024;
  let small: Gateway;

  beforeAll(async () => {
    small = await startGateway({ port: 0, maxBodyBytes: LIMIT });
  });

  afterAll(async () => {
    await small.close();
  });

  /** A valid single-query body padded with trailing spaces (still valid JSON) to `size` bytes. */
  const bodyOf = (size: number) => {
    const text = json({ query: "SELECT 1 AS one", params: [] });
    return text.padEnd(size, " ");
  };

  it("accepts a body of exactly the limit", async () => {
    const answer = await send(small.url, { method: "POST", headers: conn(), body: bodyOf(LIMIT) });
    expect(answer.status).toBe(200);
    expect(answer.body.rows).toEqual([{ one: 1 }]);
  });

  it.each([
    ["one byte over the limit", LIMIT + 1],
    ["far over the limit", 64 * 1024],
  ])("refuses a body %s with 413 / 54000, then keeps answering", async (_, size) => {
    const answer = await send(small.url, { method: "POST", headers: conn(), body: bodyOf(size) });
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe("54000");
    expect(answer.body.message).toBeTypeOf("string");
    expect(answer.body.message).not.toBe("");
    await expectHealthy(small.url);
  });

  it("refuses a streamed body without Content-Length once it passes the limit", async () => {
    const chunk = new TextEncoder().encode(bodyOf(512));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8) controller.close();
        else {
          sent += 1;
          controller.enqueue(chunk);
        }
      },
    });
    const answer = await send(small.url, {
      method: "POST",
      headers: conn(),
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe("54000");
    expect(answer.body.message).not.toBe("");
    await expectHealthy(small.url);
  });

  it("refuses a non-loopback host without opening any connection", async () => {
    const before = small.stats();
    const answer = await send(small.url, {
      method: "POST",
      headers: { "Neon-Connection-String": "postgres://u:p@db.example.com/x" },
      body: select1,
    });
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe("28000");
    const after = small.stats();
    expect(after.requests).toBe(before.requests + 1);
    expect(after.pools).toBe(before.pools);
    expect(after.open).toBe(before.open);
    await expectHealthy(small.url);
  });
});
