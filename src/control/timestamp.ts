/**
 * Timestamps as the control plane's JSON APIs show them: ISO 8601 in UTC with milliseconds
 * (`2026-12-01T02:28:50.693Z`, what `Date.prototype.toISOString` writes), not Postgres's text
 * (`2026-12-01 02:28:50.693123+00`), which the Neon HTTP driver hands over as it is. The
 * conversion happens once, when a row is read: `timestamptz` is the column type of every
 * control-database timestamp the API returns. Parsing is explicit rather than `new Date(text)`,
 * whose reading of Postgres's format is implementation-defined (ECMA-262 §21.4.3.2).
 */
import { customType } from "drizzle-orm/pg-core";

/** Postgres's ISO DateStyle output: date, time, optional fraction, offset in hours[:minutes[:seconds]]. */
const PG_TIMESTAMPTZ =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)$/;

/**
 * The ISO 8601 form of a Postgres `timestamptz` text, truncated to milliseconds. Anything else
 * (`infinity`, a BC date) is returned as it is: better shown raw than invented.
 */
export function isoTimestamp(text: string): string {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return text;
  const [, year, month, day, hour, minute, second, fraction = "", sign, oh = "0", om = "0", os = "0"] = m;
  const at = new Date(0);
  at.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  at.setUTCHours(Number(hour), Number(minute), Number(second), Number(fraction.padEnd(3, "0").slice(0, 3)));
  const offsetSeconds = (sign === "-" ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os));
  const utc = at.getTime() - offsetSeconds * 1000;
  return Number.isNaN(utc) ? text : new Date(utc).toISOString();
}

/**
 * `timestamp with time zone`, read as an ISO 8601 string; written as given (an ISO string, or SQL
 * such as `now()`). The DDL is the same as drizzle's `timestamp({ withTimezone: true })`.
 */
export const timestamptz = customType<{ data: string; driverData: string | Date }>({
  dataType: () => "timestamp with time zone",
  fromDriver: (value) => (value instanceof Date ? value.toISOString() : isoTimestamp(value)),
});
