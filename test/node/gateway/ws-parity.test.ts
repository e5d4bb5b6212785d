/**
 * One query set, two paths: `Pool` over the gateway's WebSocket endpoint and `neon()` over its
 * HTTP endpoint must return identical rows, commands, row counts and field metadata, as Neon's
 * own driver tests compare its two faces. Parameters cover every type the HTTP suite covers.
 */
import { neon, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, type TestDatabase } from "../support.ts";
import { comparable, EVERY_TYPE_DDL, PARITY_CASES } from "./every-type.ts";
import { useGatewayWebSockets } from "./ws-support.ts";

let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  useGatewayWebSockets();
  db = await createTestDatabase("wspar");
  pool = new Pool({ connectionString: db.url, max: 2 });
  for (const statement of EVERY_TYPE_DDL) await pool.query(statement);
});

afterAll(async () => {
  await pool?.end();
  await dropTestDatabase(db);
});

describe("Pool over /v2 and neon() over /sql agree", () => {
  for (const testCase of PARITY_CASES) {
    it(testCase.name, async () => {
      const sql = neon(db.url, { fullResults: true });
      const viaHttp = await sql.query(testCase.text, testCase.params ?? []);
      const viaWebSocket = await pool.query(testCase.text, testCase.params ?? []);
      const http = comparable(viaHttp);
      const session = comparable(viaWebSocket);
      // The serial id differs between the two inserts; everything else must not.
      if (testCase.text.startsWith("INSERT")) {
        for (const row of [...http.rows, ...session.rows] as Record<string, unknown>[]) row.id = "(serial)";
      }
      expect(session).toEqual(http);
    });
  }

  it("agrees in array mode", async () => {
    const sql = neon(db.url, { fullResults: true, arrayMode: true });
    const text = "SELECT 1::int8 AS big, 'x'::text AS t, NULL::int AS n, now() - now() AS zero";
    const viaHttp = await sql.query(text);
    const viaWebSocket = await pool.query({ text, rowMode: "array" });
    expect(comparable(viaWebSocket)).toEqual(comparable(viaHttp));
  });

  it("reports the same error fields", async () => {
    const sql = neon(db.url);
    const failing = "SELECT 1 / (SELECT count(*) FROM everything WHERE false)::int";
    const viaHttp = await sql.query(failing).catch((error: unknown) => error);
    const viaWebSocket = await pool.query(failing).catch((error: unknown) => error);
    const fields = ["code", "severity", "message", "routine"] as const;
    const pick = (error: unknown) =>
      Object.fromEntries(fields.map((field) => [field, (error as Record<string, unknown>)[field]]));
    expect(pick(viaWebSocket)).toEqual(pick(viaHttp));
    expect(pick(viaHttp).code).toBe("22012");
  });
});
