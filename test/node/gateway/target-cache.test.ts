/**
 * The gateway's cache of parsed connection strings: same answers as parsing afresh, one parse per
 * distinct string, bad headers never cached, and a hard bound on what it keeps. No I/O.
 */
import { describe, expect, it } from "vitest";
import { GatewayError, parseConnectionString } from "../../../src/dev/gateway/protocol.ts";
import { TargetCache } from "../../../src/dev/gateway/target-cache.ts";

const headers = (value: string) => ({ "neon-connection-string": value });

describe("TargetCache", () => {
  it("answers what parseConnectionString answers", () => {
    const cache = new TargetCache();
    const value = "postgresql://alice:s3cret@127.0.0.1:6543/shop?application_name=x";
    expect(cache.parse(headers(value))).toEqual(parseConnectionString(headers(value)));
  });

  it("parses a string once and reuses the result", () => {
    const cache = new TargetCache();
    const first = cache.parse(headers("postgresql://alice:pw@localhost/shop"));
    expect(cache.parse(headers("postgresql://alice:pw@localhost/shop"))).toBe(first);
    expect(cache.count).toBe(1);
    const other = cache.parse(headers("postgresql://alice:pw@localhost/shop2"));
    expect(other).not.toBe(first);
    expect(other.database).toBe("shop2");
    expect(cache.count).toBe(2);
  });

  it("refuses a bad header every time and keeps nothing for it", () => {
    const cache = new TargetCache();
    for (let i = 0; i < 2; i++) {
      expect(() => cache.parse(headers("mysql://u:p@localhost/db"))).toThrow(GatewayError);
      expect(() => cache.parse({})).toThrow(GatewayError);
    }
    expect(cache.count).toBe(0);
  });

  it("reads the first of repeated headers without caching the list", () => {
    const cache = new TargetCache();
    const target = cache.parse({
      "neon-connection-string": ["postgres://a:b@localhost/one", "postgres://a:b@localhost/two"],
    });
    expect(target.database).toBe("one");
    expect(cache.count).toBe(0);
  });

  it("keeps at most `size` strings, dropping the oldest first", () => {
    const cache = new TargetCache(3);
    const parsed = ["a", "b", "c", "d"].map((db) => cache.parse(headers(`postgres://u:p@localhost/${db}`)));
    expect(cache.count).toBe(3);
    // "a" was dropped: parsing it again gives an equal but new object; "d" is still the cached one.
    const again = cache.parse(headers("postgres://u:p@localhost/a"));
    expect(again).toEqual(parsed[0]);
    expect(again).not.toBe(parsed[0]);
    expect(cache.parse(headers("postgres://u:p@localhost/d"))).toBe(parsed[3]);
    expect(cache.count).toBe(3);
  });
});
