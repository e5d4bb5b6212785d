/**
 * isoTimestamp: Postgres's `timestamptz` text, as the Neon HTTP driver hands it over, becomes the
 * ISO 8601 string the JSON APIs show. Pure, no database.
 */
import { describe, expect, it } from "vitest";
import { isoTimestamp } from "../../../src/control/timestamp.ts";

describe("isoTimestamp", () => {
  it("turns Postgres text in UTC into ISO 8601 with milliseconds", () => {
    expect(isoTimestamp("2026-12-01 02:28:50.693+00")).toBe("2026-12-01T02:28:50.693Z");
    expect(isoTimestamp("2026-12-01 02:28:50+00")).toBe("2026-12-01T02:28:50.000Z");
    expect(isoTimestamp("2026-12-01 02:28:50.6+00")).toBe("2026-12-01T02:28:50.600Z");
  });

  it("truncates microseconds (never rounds into the next millisecond)", () => {
    expect(isoTimestamp("2026-12-01 02:28:50.693999+00")).toBe("2026-12-01T02:28:50.693Z");
    expect(isoTimestamp("2026-12-31 23:59:59.999999+00")).toBe("2026-12-31T23:59:59.999Z");
  });

  it("converts any session time zone offset to UTC", () => {
    expect(isoTimestamp("2026-12-01 08:28:50.693+06")).toBe("2026-12-01T02:28:50.693Z");
    expect(isoTimestamp("2026-11-30 21:58:50.693-04:30")).toBe("2026-12-01T02:28:50.693Z");
    expect(isoTimestamp("2026-12-01 07:58:50.693+05:30")).toBe("2026-12-01T02:28:50.693Z");
    expect(isoTimestamp("1890-01-01 00:53:28+00:53:28")).toBe("1890-01-01T00:00:00.000Z");
  });

  it("is idempotent on its own output", () => {
    expect(isoTimestamp("2026-12-01T02:28:50.693Z")).toBe("2026-12-01T02:28:50.693Z");
  });

  it("leaves what it cannot read as it is", () => {
    expect(isoTimestamp("infinity")).toBe("infinity");
    expect(isoTimestamp("-infinity")).toBe("-infinity");
    expect(isoTimestamp("0044-03-15 12:00:00+00 BC")).toBe("0044-03-15 12:00:00+00 BC");
  });

  it("keeps years before 100 (Date.UTC would read them as 19xx)", () => {
    expect(isoTimestamp("0042-01-02 03:04:05+00")).toBe("0042-01-02T03:04:05.000Z");
  });
});
