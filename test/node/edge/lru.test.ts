import { describe, expect, it } from "vitest";
import { TtlLru } from "../../../src/worker/edge/lru.ts";

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("TtlLru", () => {
  it("returns what was set, and undefined for unknown keys", () => {
    const cache = new TtlLru<string>(10);
    cache.set("a", "A", 1_000);
    expect(cache.get("a")).toBe("A");
    expect(cache.get("b")).toBeUndefined();
  });

  it("keeps null values apart from misses (cached 'not found')", () => {
    const cache = new TtlLru<string | null>(10);
    cache.set("missing", null, 1_000);
    expect(cache.get("missing")).toBeNull();
    expect(cache.get("never-set")).toBeUndefined();
  });

  it("expires an entry exactly at its ttl and removes it", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(10, clock.now);
    cache.set("a", "A", 100);
    clock.advance(99);
    expect(cache.get("a")).toBe("A");
    clock.advance(1);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("gives each entry its own ttl", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(10, clock.now);
    cache.set("found", "tenant", 30_000);
    cache.set("not-found", "none", 5_000);
    clock.advance(5_000);
    expect(cache.get("not-found")).toBeUndefined();
    expect(cache.get("found")).toBe("tenant");
    clock.advance(25_000);
    expect(cache.get("found")).toBeUndefined();
  });

  it("does not extend the ttl on a hit", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(10, clock.now);
    cache.set("a", "A", 100);
    clock.advance(60);
    expect(cache.get("a")).toBe("A");
    clock.advance(40);
    expect(cache.get("a")).toBeUndefined();
  });

  it("restarts the ttl when a key is set again", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(10, clock.now);
    cache.set("a", "old", 100);
    clock.advance(90);
    cache.set("a", "new", 100);
    clock.advance(90);
    expect(cache.get("a")).toBe("new");
    expect(cache.size).toBe(1);
  });

  it("stores nothing for a ttl that is zero, negative or NaN, and drops the previous value", () => {
    const cache = new TtlLru<string>(10);
    for (const ttl of [0, -1, Number.NaN]) {
      cache.set("a", "A", 1_000);
      cache.set("a", "B", ttl);
      expect(cache.get("a")).toBeUndefined();
      expect(cache.size).toBe(0);
    }
  });

  it("treats an infinite ttl as never expiring", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(10, clock.now);
    cache.set("a", "A", Number.POSITIVE_INFINITY);
    clock.advance(1e12);
    expect(cache.get("a")).toBe("A");
  });

  it("never holds more than maxEntries", () => {
    const cache = new TtlLru<number>(3);
    for (let i = 0; i < 100; i++) {
      cache.set(`k${i}`, i, 1_000);
      expect(cache.size).toBeLessThanOrEqual(3);
    }
    expect(cache.size).toBe(3);
    expect([cache.get("k97"), cache.get("k98"), cache.get("k99")]).toEqual([97, 98, 99]);
    expect(cache.get("k96")).toBeUndefined();
  });

  it("evicts the least recently set entry first", () => {
    const cache = new TtlLru<string>(2);
    cache.set("a", "A", 1_000);
    cache.set("b", "B", 1_000);
    cache.set("c", "C", 1_000);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")).toBe("B");
    expect(cache.get("c")).toBe("C");
  });

  it("counts a hit as a use, so a read entry survives eviction", () => {
    const cache = new TtlLru<string>(2);
    cache.set("a", "A", 1_000);
    cache.set("b", "B", 1_000);
    expect(cache.get("a")).toBe("A");
    cache.set("c", "C", 1_000);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("A");
    expect(cache.get("c")).toBe("C");
  });

  it("counts setting an existing key as a use, without growing", () => {
    const cache = new TtlLru<string>(2);
    cache.set("a", "A", 1_000);
    cache.set("b", "B", 1_000);
    cache.set("a", "A2", 1_000);
    expect(cache.size).toBe(2);
    cache.set("c", "C", 1_000);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("A2");
  });

  it("does not count a miss on an expired entry as a use", () => {
    const clock = fakeClock();
    const cache = new TtlLru<string>(2, clock.now);
    cache.set("short", "S", 10);
    cache.set("long", "L", 1_000);
    clock.advance(10);
    expect(cache.get("short")).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.set("other", "O", 1_000);
    expect(cache.get("long")).toBe("L");
    expect(cache.get("other")).toBe("O");
  });

  it("with maxEntries 1 keeps only the latest entry", () => {
    const cache = new TtlLru<string>(1);
    cache.set("a", "A", 1_000);
    cache.set("b", "B", 1_000);
    expect(cache.size).toBe(1);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")).toBe("B");
  });

  it("deletes one key and clears all", () => {
    const cache = new TtlLru<string>(10);
    cache.set("a", "A", 1_000);
    cache.set("b", "B", 1_000);
    expect(cache.delete("a")).toBe(true);
    expect(cache.delete("a")).toBe(false);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get("b")).toBeUndefined();
  });

  it("defaults to the wall clock", () => {
    const cache = new TtlLru<string>(10);
    cache.set("a", "A", 60_000);
    expect(cache.get("a")).toBe("A");
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses maxEntries %s", (max) => {
    expect(() => new TtlLru<string>(max)).toThrow(RangeError);
  });
});
