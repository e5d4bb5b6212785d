/**
 * Pure parsing and shaping for Neon's SQL-over-HTTP protocol (see shared docs NEON-HTTP.md and
 * `@neondatabase/serverless` `neon()`): no I/O here, so every rule is unit-testable.
 */

/** A gateway-level failure with the HTTP status to answer and a SQLSTATE-like code. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    /** SQLSTATE class that best names the failure; surfaced as `NeonDbError.code` on 400s. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

export type Param = string | number | boolean | null;

export interface QuerySpec {
  readonly query: string;
  readonly params: readonly Param[];
}

export type RequestBody =
  | { readonly kind: "single"; readonly query: QuerySpec }
  | { readonly kind: "batch"; readonly queries: readonly QuerySpec[] };

const PROTOCOL_VIOLATION = "08P01";
const INVALID_PARAMETER_VALUE = "22023";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseQuerySpec(value: unknown, where: string): QuerySpec {
  if (!isRecord(value))
    throw new GatewayError(400, PROTOCOL_VIOLATION, `${where} must be an object with "query" and "params"`);
  const { query, params } = value;
  if (typeof query !== "string") throw new GatewayError(400, PROTOCOL_VIOLATION, `${where}.query must be a string`);
  if (params === undefined || params === null) return { query, params: [] };
  if (!Array.isArray(params)) throw new GatewayError(400, INVALID_PARAMETER_VALUE, `${where}.params must be an array`);
  params.forEach((param, index) => {
    const type = typeof param;
    if (param !== null && type !== "string" && type !== "number" && type !== "boolean") {
      // The driver serialises every value to text (arrays as `{...}` literals, objects as JSON),
      // so a nested value here means a client that does not speak the protocol.
      throw new GatewayError(
        400,
        INVALID_PARAMETER_VALUE,
        `${where}.params[${index}] must be a string, number, boolean or null, not ${Array.isArray(param) ? "an array" : type}`,
      );
    }
    if (type === "number" && !Number.isFinite(param)) {
      throw new GatewayError(400, INVALID_PARAMETER_VALUE, `${where}.params[${index}] must be a finite number`);
    }
  });
  return { query, params: params as Param[] };
}

/** Parses a request body: `{query, params}` or `{queries: [{query, params}, ...]}`. */
export function parseRequestBody(text: string): RequestBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError(400, PROTOCOL_VIOLATION, "request body is not valid JSON");
  }
  if (!isRecord(value)) throw new GatewayError(400, PROTOCOL_VIOLATION, "request body must be a JSON object");
  if ("queries" in value) {
    const { queries } = value;
    if (!Array.isArray(queries)) throw new GatewayError(400, PROTOCOL_VIOLATION, '"queries" must be an array');
    return { kind: "batch", queries: queries.map((query, index) => parseQuerySpec(query, `queries[${index}]`)) };
  }
  return { kind: "single", query: parseQuerySpec(value, "body") };
}

export type IsolationLevel = "ReadUncommitted" | "ReadCommitted" | "RepeatableRead" | "Serializable";

const ISOLATION_SQL: Record<IsolationLevel, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

export interface BatchOptions {
  readonly isolationLevel: IsolationLevel | undefined;
  readonly readOnly: boolean | undefined;
  readonly deferrable: boolean | undefined;
}

type HeaderValue = string | string[] | undefined;
export type Headers = Readonly<Record<string, HeaderValue>>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function parseBoolHeader(headers: Headers, name: string): boolean | undefined {
  const value = header(headers, name);
  if (value === undefined) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new GatewayError(400, INVALID_PARAMETER_VALUE, `header ${name} must be "true" or "false"`);
}

export function parseBatchOptions(headers: Headers): BatchOptions {
  const level = header(headers, "Neon-Batch-Isolation-Level");
  if (level !== undefined && !Object.hasOwn(ISOLATION_SQL, level)) {
    throw new GatewayError(
      400,
      INVALID_PARAMETER_VALUE,
      `header Neon-Batch-Isolation-Level must be one of ${Object.keys(ISOLATION_SQL).join(", ")}`,
    );
  }
  return {
    isolationLevel: level as IsolationLevel | undefined,
    readOnly: parseBoolHeader(headers, "Neon-Batch-Read-Only"),
    deferrable: parseBoolHeader(headers, "Neon-Batch-Deferrable"),
  };
}

/** The `BEGIN` that opens a batch transaction with the requested characteristics. */
export function beginStatement(options: BatchOptions): string {
  const parts = ["BEGIN"];
  if (options.isolationLevel) parts.push(`ISOLATION LEVEL ${ISOLATION_SQL[options.isolationLevel]}`);
  if (options.readOnly !== undefined) parts.push(options.readOnly ? "READ ONLY" : "READ WRITE");
  if (options.deferrable !== undefined) parts.push(options.deferrable ? "DEFERRABLE" : "NOT DEFERRABLE");
  return parts.join(" ");
}

export interface ResponseOptions {
  /** `Neon-Array-Mode: true`: rows as arrays (what the driver always asks for). */
  readonly arrayMode: boolean;
  /** `Neon-Raw-Text-Output: true`: every value as Postgres prints it. */
  readonly rawText: boolean;
}

export function parseResponseOptions(headers: Headers): ResponseOptions {
  return {
    arrayMode: parseBoolHeader(headers, "Neon-Array-Mode") ?? false,
    rawText: parseBoolHeader(headers, "Neon-Raw-Text-Output") ?? false,
  };
}

export interface Target {
  /** Pool key: the connection string without client-only parameters. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Label safe to log: no password. */
  readonly label: string;
}

/** Parameters the driver adds that only describe the client; they must not split pools. */
const CLIENT_ONLY_PARAMS = new Set(["application_name", "sslmode", "channel_binding", "options"]);

/** Parses and checks the `Neon-Connection-String` header. */
export function parseConnectionString(headers: Headers): Target {
  const raw = header(headers, "Neon-Connection-String");
  if (!raw) throw new GatewayError(400, PROTOCOL_VIOLATION, "missing Neon-Connection-String header");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayError(400, PROTOCOL_VIOLATION, "Neon-Connection-String is not a valid URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new GatewayError(
      400,
      PROTOCOL_VIOLATION,
      "Neon-Connection-String must start with postgres:// or postgresql://",
    );
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  const user = decodeURIComponent(url.username);
  if (!url.hostname || !user || !database) {
    throw new GatewayError(400, PROTOCOL_VIOLATION, "Neon-Connection-String must name a user, a host and a database");
  }
  const port = url.port ? Number(url.port) : 5432;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const key = new URL(url.toString());
  for (const name of [...key.searchParams.keys()]) if (CLIENT_ONLY_PARAMS.has(name)) key.searchParams.delete(name);
  return {
    key: key.toString(),
    host,
    port,
    user,
    password: decodeURIComponent(url.password),
    database,
    label: `${user}@${host}:${port}/${database}`,
  };
}

/** Loopback names and addresses: 127.0.0.0/8, ::1, localhost and names under `.localhost`. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (name === "::1" || name === "0:0:0:0:0:0:0:1") return true;
  if (/^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** Refuses targets the gateway was not told to forward to (loopback only by default). */
export function checkTarget(target: Target, allowedHosts: ReadonlySet<string> | "any"): void {
  if (allowedHosts === "any" || isLoopbackHost(target.host) || allowedHosts.has(target.host.toLowerCase())) return;
  throw new GatewayError(
    403,
    "28000",
    `host ${target.host} is not allowed: the gateway forwards to loopback hosts only (set allowedHosts to add others)`,
  );
}

/** Every field of a Postgres error that `NeonDbError` reads. */
export const ERROR_FIELDS = [
  "severity",
  "code",
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
] as const;

/** The Neon-style JSON body for an error: `message` plus every Postgres error field present. */
export function errorBody(error: unknown): Record<string, string> {
  const source = (isRecord(error) ? error : {}) as Record<string, unknown>;
  const body: Record<string, string> = {
    message: error instanceof Error ? error.message : String(error),
  };
  for (const field of ERROR_FIELDS) {
    const value = source[field];
    if (typeof value === "string" || typeof value === "number") body[field] = String(value);
  }
  return body;
}

export interface FieldInfo {
  readonly name: string;
  readonly tableID: number;
  readonly columnID: number;
  readonly dataTypeID: number;
  readonly dataTypeSize: number;
  readonly dataTypeModifier: number;
  readonly format: string;
}

export interface ResultShape {
  /** Null when Postgres sent no command tag (an empty query), as `pg` reports it. */
  readonly command: string | null;
  readonly rowCount: number | null;
  readonly rows: readonly (readonly (string | null)[])[];
  readonly fields: readonly FieldInfo[];
}

/** Type OIDs whose text form maps to a JSON number or boolean without loss. */
const JSON_NUMBER_OIDS = new Set([21, 23, 26, 700, 701]);
const JSON_BOOL_OID = 16;
const JSON_OIDS = new Set([114, 3802]);

function jsonValue(text: string | null, oid: number): unknown {
  if (text === null) return null;
  if (oid === JSON_BOOL_OID) return text === "t";
  if (JSON_NUMBER_OIDS.has(oid)) {
    const number = Number(text);
    return Number.isFinite(number) ? number : text;
  }
  if (JSON_OIDS.has(oid)) return JSON.parse(text);
  return text;
}

/** Shapes one result as Neon does: array or object rows, raw text or JSON-typed values. */
export function shapeResult(result: ResultShape, options: ResponseOptions): Record<string, unknown> {
  const fields = result.fields.map((field) => ({
    name: field.name,
    dataTypeID: field.dataTypeID,
    tableID: field.tableID,
    columnID: field.columnID,
    dataTypeSize: field.dataTypeSize,
    dataTypeModifier: field.dataTypeModifier,
    format: field.format,
  }));
  const cell = options.rawText
    ? (value: string | null) => value
    : (value: string | null, index: number) => jsonValue(value, fields[index]?.dataTypeID ?? 25);
  const rows = options.arrayMode
    ? result.rows.map((row) => row.map(cell))
    : result.rows.map((row) =>
        Object.fromEntries(row.map((value, index) => [fields[index]?.name ?? `?column?${index}`, cell(value, index)])),
      );
  return { command: result.command, rowCount: result.rowCount, rows, fields, rowAsArray: options.arrayMode };
}
