/**
 * Structured JSON logs, one object per line, with request id and tenant id. String values are
 * bounded and scrubbed (redact.ts): anything shaped like a connection string or a bearer token
 * never reaches a log line.
 */
import { scrub } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

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
      const entry: Record<string, unknown> = { level, event, time: new Date().toISOString() };
      // Base fields too: `with()` adds values that came from a request (a token's `sub`, a client's id).
      for (const [key, value] of [...Object.entries(base), ...Object.entries(fields)]) {
        if (value !== undefined) entry[key] = typeof value === "string" ? scrub(value) : value;
      }
      sink(JSON.stringify(entry));
    },
    with(fields) {
      return createLogger(minLevel, { ...base, ...fields }, sink);
    },
  };
}
