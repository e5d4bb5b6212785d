/**
 * Structured JSON logs, one object per line, with request id and tenant id. Values are scrubbed:
 * anything shaped like a connection string or a bearer token never reaches a log line.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const CONNECTION_STRING = /\b(postgres(?:ql)?):\/\/[^\s"']+/gi;
const BEARER = /\bBearer\s+[A-Za-z0-9._~+/=-]+/g;
const JWT = /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;

/** Removes secrets from a string that may have come from a driver or a client. */
export function scrub(text: string): string {
  return text
    .replace(CONNECTION_STRING, "$1://[redacted]")
    .replace(BEARER, "Bearer [redacted]")
    .replace(JWT, "[redacted-jwt]");
}

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  log(level: LogLevel, event: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

export function createLogger(
  minLevel: string | undefined,
  base: LogFields = {},
  sink: (line: string) => void = console.log,
): Logger {
  const min = ORDER[(minLevel as LogLevel) ?? "info"] ?? ORDER.info;
  return {
    log(level, event, fields = {}) {
      if (ORDER[level] < min) return;
      const entry: Record<string, unknown> = { level, event, time: new Date().toISOString(), ...base };
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) entry[key] = typeof value === "string" ? scrub(value) : value;
      }
      sink(JSON.stringify(entry));
    },
    with(fields) {
      return createLogger(minLevel, { ...base, ...fields }, sink);
    },
  };
}
