/**
 * Unit tests of the gateway's pure protocol rules: host checks, batch options, connection strings,
 * result shaping and error bodies. No I/O.
 */
import { describe, expect, it } from "vitest";
import {
  type BatchOptions,
  beginStatement,
  ERROR_FIELDS,
  errorBody,
  type FieldInfo,
  GatewayError,
  isLoopbackHost,
  parseBatchOptions,
  parseConnectionString,
  parseRequestBody,
  parseResponseOptions,
  type ResultShape,
  shapeResult,
} from "../../../src/dev/gateway/protocol.ts";

/** Runs `work`, which must throw a GatewayError, and returns it. */
function gatewayErrorOf(work: () => unknown): GatewayError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error("expected a GatewayError, but nothing was thrown");
}

describe("isLoopbackHost", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["127.255.255.255", true],
    ["127.0.0.1.", true],
    ["::1", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["localhost", true],
    ["LOCALHOST.", true],
    ["LocalHost", true],
    ["foo.localhost", true],
    ["a.b.localhost.", true],
    ["128.0.0.1", false],
    ["10.0.0.1", false],
    ["192.168.1.1", false],
    ["0.0.0.0", false],
    ["::", false],
    ["::2", false],
    ["::ffff:10.0.0.1", false],
    ["localhost.example.com", false],
    ["notlocalhost", false],
    ["127.0.0.1.example.com", false],
    ["db.example.com", false],
    ["[::1]", false],
    ["", false],
  ])("%j → %s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe("beginStatement", () => {
  const none: BatchOptions = { isolationLevel: undefined, readOnly: undefined, deferrable: undefined };

  it.each<[Partial<BatchOptions>, string]>([
    [{}, "BEGIN"],
    [{ isolationLevel: "ReadUncommitted" }, "BEGIN ISOLATION LEVEL READ UNCOMMITTED"],
    [{ isolationLevel: "ReadCommitted" }, "BEGIN ISOLATION LEVEL READ COMMITTED"],
    [{ isolationLevel: "RepeatableRead" }, "BEGIN ISOLATION LEVEL REPEATABLE READ"],
    [{ isolationLevel: "Serializable" }, "BEGIN ISOLATION LEVEL SERIALIZABLE"],
    [{ readOnly: true }, "BEGIN READ ONLY"],
    [{ readOnly: false }, "BEGIN READ WRITE"],
    [{ deferrable: true }, "BEGIN DEFERRABLE"],
    [{ deferrable: false }, "BEGIN NOT DEFERRABLE"],
    [
      { isolationLevel: "Serializable", readOnly: true, deferrable: true },
      "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
    ],
    [
      { isolationLevel: "ReadCommitted", readOnly: false, deferrable: false },
      "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE NOT DEFERRABLE",
    ],
  ])("%j → %s", (options, expected) => {
    expect(beginStatement({ ...none, ...options })).toBe(expected);
  });
});

describe("parseBatchOptions", () => {
  it("leaves every option unset without headers", () => {
    expect(parseBatchOptions({})).toEqual({ isolationLevel: undefined, readOnly: undefined, deferrable: undefined });
  });

  it("reads the three batch headers (as Node lower-cases them)", () => {
    expect(
      parseBatchOptions({
        "neon-batch-isolation-level": "RepeatableRead",
        "neon-batch-read-only": "true",
        "neon-batch-deferrable": "false",
      }),
    ).toEqual({ isolationLevel: "RepeatableRead", readOnly: true, deferrable: false });
  });

  it("takes the first value of a repeated header", () => {
    expect(parseBatchOptions({ "neon-batch-isolation-level": ["Serializable", "ReadCommitted"] }).isolationLevel).toBe(
      "Serializable",
    );
  });

  it.each([
    ["Neon-Batch-Isolation-Level", "serializable"],
    ["Neon-Batch-Isolation-Level", "SERIALIZABLE"],
    ["Neon-Batch-Isolation-Level", "Chaos"],
    ["Neon-Batch-Isolation-Level", ""],
    ["Neon-Batch-Isolation-Level", "Serializable; DROP TABLE x"],
    // Names every object inherits must not pass for isolation levels.
    ["Neon-Batch-Isolation-Level", "toString"],
    ["Neon-Batch-Isolation-Level", "constructor"],
    ["Neon-Batch-Isolation-Level", "__proto__"],
    ["Neon-Batch-Read-Only", "yes"],
    ["Neon-Batch-Read-Only", "TRUE"],
    ["Neon-Batch-Read-Only", "1"],
    ["Neon-Batch-Read-Only", ""],
    ["Neon-Batch-Deferrable", "on"],
    ["Neon-Batch-Deferrable", "False"],
  ])("refuses %s: %j with a 400", (name, value) => {
    const error = gatewayErrorOf(() => parseBatchOptions({ [name.toLowerCase()]: value }));
    expect(error.status).toBe(400);
    expect(error.code).toBe("22023");
    expect(error.message).toContain(name);
  });
});

describe("parseResponseOptions", () => {
  it("defaults to object rows and JSON-typed values", () => {
    expect(parseResponseOptions({})).toEqual({ arrayMode: false, rawText: false });
  });

  it("reads Neon-Array-Mode and Neon-Raw-Text-Output", () => {
    expect(parseResponseOptions({ "neon-array-mode": "true", "neon-raw-text-output": "true" })).toEqual({
      arrayMode: true,
      rawText: true,
    });
  });

  it("refuses a value other than true or false", () => {
    const error = gatewayErrorOf(() => parseResponseOptions({ "neon-array-mode": "maybe" }));
    expect(error).toMatchObject({ status: 400, code: "22023" });
  });
});

describe("parseRequestBody", () => {
  it("parses a single query, with missing or null params as none", () => {
    expect(parseRequestBody('{"query":"SELECT $1","params":[1,"a",true,null]}')).toEqual({
      kind: "single",
      query: { query: "SELECT $1", params: [1, "a", true, null] },
    });
    expect(parseRequestBody('{"query":"SELECT 1"}')).toEqual({
      kind: "single",
      query: { query: "SELECT 1", params: [] },
    });
    expect(parseRequestBody('{"query":"SELECT 1","params":null}')).toEqual({
      kind: "single",
      query: { query: "SELECT 1", params: [] },
    });
  });

  it("parses a batch", () => {
    expect(
      parseRequestBody('{"queries":[{"query":"SELECT 1","params":[]},{"query":"SELECT $1","params":["x"]}]}'),
    ).toEqual({
      kind: "batch",
      queries: [
        { query: "SELECT 1", params: [] },
        { query: "SELECT $1", params: ["x"] },
      ],
    });
  });

  it.each([
    ["not JSON", "{", "08P01"],
    ["empty", "", "08P01"],
    ["an array", "[]", "08P01"],
    ["a string", '"SELECT 1"', "08P01"],
    ["null", "null", "08P01"],
    ["queries not an array", '{"queries":{"query":"SELECT 1"}}', "08P01"],
    ["a batch item not an object", '{"queries":["SELECT 1"]}', "08P01"],
    ["query not a string", '{"query":42}', "08P01"],
    ["no query", '{"params":[]}', "08P01"],
    ["params not an array", '{"query":"SELECT 1","params":"x"}', "22023"],
    ["a nested object param", '{"query":"SELECT $1","params":[{"a":1}]}', "22023"],
    ["a nested array param", '{"query":"SELECT $1","params":[[1,2]]}', "22023"],
    ["an oversized number (Infinity)", '{"query":"SELECT $1","params":[1e400]}', "22023"],
  ])("refuses %s", (_, text, code) => {
    const error = gatewayErrorOf(() => parseRequestBody(text));
    expect(error.status).toBe(400);
    expect(error.code).toBe(code);
    expect(error.message).not.toBe("");
  });
});

describe("parseConnectionString", () => {
  const parse = (value: string) => parseConnectionString({ "neon-connection-string": value });

  it("splits a connection string into its parts", () => {
    expect(parse("postgresql://alice:s3cret@127.0.0.1:6543/shop")).toMatchObject({
      host: "127.0.0.1",
      port: 6543,
      user: "alice",
      password: "s3cret",
      database: "shop",
    });
  });

  it("defaults the port to 5432, unwraps IPv6 brackets and decodes percent-escapes", () => {
    expect(parse("postgres://a%40b:p%2Fw%3A@[::1]/my%20db")).toMatchObject({
      host: "::1",
      port: 5432,
      user: "a@b",
      password: "p/w:",
      database: "my db",
    });
  });

  it("drops client-only parameters from the pool key, keeping the rest", () => {
    const plain = parse("postgresql://alice:pw@localhost:5432/shop");
    const fromDriver = parse(
      "postgresql://alice:pw@localhost:5432/shop?application_name=pkg%3Anpm%2Fx&sslmode=require&channel_binding=require",
    );
    expect(fromDriver.key).toBe(plain.key);
    expect(fromDriver.key).not.toContain("application_name");
    const other = parse("postgresql://alice:pw@localhost:5432/shop?application_name=x&search_path=s");
    expect(other.key).toContain("search_path=s");
    expect(other.key).not.toBe(plain.key);
  });

  it("keys pools by credentials and database", () => {
    const base = parse("postgresql://alice:pw@localhost/shop").key;
    expect(parse("postgresql://alice:other@localhost/shop").key).not.toBe(base);
    expect(parse("postgresql://bob:pw@localhost/shop").key).not.toBe(base);
    expect(parse("postgresql://alice:pw@localhost/shop2").key).not.toBe(base);
  });

  it("labels without the password", () => {
    const target = parse("postgresql://alice:very-secret-pw@127.0.0.1:6543/shop");
    expect(target.label).toBe("alice@127.0.0.1:6543/shop");
    expect(target.label).not.toContain("very-secret-pw");
  });

  it("reads the first of repeated headers", () => {
    const target = parseConnectionString({
      "neon-connection-string": ["postgres://a:b@localhost/one", "postgres://a:b@localhost/two"],
    });
    expect(target.database).toBe("one");
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["not a URL", "not a url"],
    ["another scheme", "http://u:p@localhost/db"],
    ["mysql", "mysql://u:p@localhost/db"],
    ["no database", "postgres://u:p@localhost"],
    ["an empty database", "postgres://u:p@localhost:5432/"],
    ["no user", "postgres://localhost/db"],
    ["no host", "postgres:///db"],
  ])("refuses %s with a 400", (_, value) => {
    const error = gatewayErrorOf(() =>
      parseConnectionString(value === undefined ? {} : { "neon-connection-string": value }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe("08P01");
    expect(error.message).toContain("Neon-Connection-String");
  });
});

describe("shapeResult", () => {
  const field = (name: string, dataTypeID: number): FieldInfo => ({
    name,
    tableID: 0,
    columnID: 0,
    dataTypeID,
    dataTypeSize: -1,
    dataTypeModifier: -1,
    format: "text",
  });
  const result: ResultShape = {
    command: "SELECT",
    rowCount: 2,
    fields: [
      field("b", 16),
      field("i2", 21),
      field("i4", 23),
      field("oid", 26),
      field("f4", 700),
      field("f8", 701),
      field("i8", 20),
      field("num", 1700),
      field("t", 25),
      field("j", 114),
      field("jb", 3802),
      field("ts", 1184),
    ],
    rows: [
      [
        "t",
        "-7",
        "42",
        "99",
        "1.5",
        "NaN",
        "9223372036854775807",
        "0.1",
        "text",
        '{"a":[1,2]}',
        "[true,null]",
        "2024-01-01 00:00:00+00",
      ],
      ["f", null, "-1", null, "-Infinity", "Infinity", null, null, null, "null", '"s"', null],
    ],
  };

  it("passes raw text through in array mode", () => {
    const shaped = shapeResult(result, { arrayMode: true, rawText: true });
    expect(shaped.rows).toEqual(result.rows);
    expect(shaped.rowAsArray).toBe(true);
    expect(shaped.command).toBe("SELECT");
    expect(shaped.rowCount).toBe(2);
  });

  it("keys raw text by field name in object mode", () => {
    const shaped = shapeResult(result, { arrayMode: false, rawText: true });
    expect(shaped.rowAsArray).toBe(false);
    expect((shaped.rows as unknown[])[0]).toMatchObject({
      b: "t",
      i4: "42",
      i8: "9223372036854775807",
      j: '{"a":[1,2]}',
    });
  });

  it("types booleans, small numbers and JSON, keeping lossy or non-finite values as text", () => {
    const shaped = shapeResult(result, { arrayMode: false, rawText: false });
    expect(shaped.rows).toEqual([
      {
        b: true,
        i2: -7,
        i4: 42,
        oid: 99,
        f4: 1.5,
        f8: "NaN",
        i8: "9223372036854775807",
        num: "0.1",
        t: "text",
        j: { a: [1, 2] },
        jb: [true, null],
        ts: "2024-01-01 00:00:00+00",
      },
      {
        b: false,
        i2: null,
        i4: -1,
        oid: null,
        f4: "-Infinity",
        f8: "Infinity",
        i8: null,
        num: null,
        t: null,
        j: null,
        jb: "s",
        ts: null,
      },
    ]);
  });

  it("types values in array mode too", () => {
    const shaped = shapeResult(result, { arrayMode: true, rawText: false });
    expect((shaped.rows as unknown[][])[0]?.slice(0, 3)).toEqual([true, -7, 42]);
  });

  it("describes fields with exactly Neon's keys", () => {
    const shaped = shapeResult(
      { command: "SELECT", rowCount: 0, rows: [], fields: [{ ...field("x", 23), tableID: 5, columnID: 2 }] },
      { arrayMode: true, rawText: true },
    );
    expect(shaped.fields).toEqual([
      { name: "x", dataTypeID: 23, tableID: 5, columnID: 2, dataTypeSize: -1, dataTypeModifier: -1, format: "text" },
    ]);
    expect(shaped.rows).toEqual([]);
  });

  it("keeps command and a null rowCount for statements without rows", () => {
    const shaped = shapeResult(
      { command: "CREATE", rowCount: null, rows: [], fields: [] },
      { arrayMode: false, rawText: false },
    );
    expect(shaped).toEqual({ command: "CREATE", rowCount: null, rows: [], fields: [], rowAsArray: false });
  });
});

describe("errorBody", () => {
  it("copies message and every Postgres error field present", () => {
    const error = Object.assign(new Error('duplicate key value violates unique constraint "people_email_key"'), {
      severity: "ERROR",
      code: "23505",
      detail: "Key (email)=(a@b) already exists.",
      schema: "public",
      table: "people",
      constraint: "people_email_key",
      file: "nbtinsert.c",
      line: "666",
      routine: "_bt_check_unique",
      position: 8,
    });
    expect(errorBody(error)).toEqual({
      message: 'duplicate key value violates unique constraint "people_email_key"',
      severity: "ERROR",
      code: "23505",
      detail: "Key (email)=(a@b) already exists.",
      schema: "public",
      table: "people",
      constraint: "people_email_key",
      file: "nbtinsert.c",
      line: "666",
      routine: "_bt_check_unique",
      position: "8",
    });
  });

  it("copies every field NeonDbError reads", () => {
    const error = Object.assign(new Error("boom"), Object.fromEntries(ERROR_FIELDS.map((name) => [name, `v-${name}`])));
    const body = errorBody(error);
    for (const name of ERROR_FIELDS) expect(body[name]).toBe(`v-${name}`);
  });

  it("leaves out absent, non-scalar and unknown fields", () => {
    const error = Object.assign(new Error("boom"), { code: "XX000", detail: undefined, hint: { a: 1 }, secret: "x" });
    expect(errorBody(error)).toEqual({ message: "boom", code: "XX000" });
  });

  it("turns a non-Error into a message", () => {
    expect(errorBody("plain failure")).toEqual({ message: "plain failure" });
    expect(errorBody(null)).toEqual({ message: "null" });
  });
});
