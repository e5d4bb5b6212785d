/**
 * What the logger applies to every string field: bounded first (a client chooses how long the path
 * of an unknown host is), then redacted (shared/redact.ts).
 */
import { redactSecrets } from "../../shared/redact.ts";

/** Longest string value a log line carries; longer ones are cut (before redaction) and marked. */
export const MAX_LOGGED_CHARS = 2048;

/** Bounds, then redacts: what the logger applies to every string field. */
export function scrub(text: string): string {
  const bounded =
    text.length > MAX_LOGGED_CHARS
      ? `${text.slice(0, MAX_LOGGED_CHARS)}…[${text.length - MAX_LOGGED_CHARS} more chars]`
      : text;
  return redactSecrets(bounded);
}
