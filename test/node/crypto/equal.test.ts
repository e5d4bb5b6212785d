/**
 * The signature comparison reads every byte whatever the data (issue 16, finding 8): the old
 * fallback (`every`) stopped at the first differing byte, so its time told how much of a guessed
 * MAC was right. Counted deterministically by reading through a Proxy, not by timing.
 */
import { describe, expect, it } from "vitest";
import { constantTimeEqual, constantTimeEqualFallback } from "../../../src/shared/crypto/equal.ts";

/** A view of `bytes` that counts index reads. */
function counted(bytes: Uint8Array): { view: Uint8Array; reads: () => number } {
  let reads = 0;
  const view = new Proxy(bytes, {
    get(target, key, receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads++;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" && receiver !== target ? value.bind(target) : value;
    },
  });
  return { view, reads: () => reads };
}

describe("constantTimeEqual", () => {
  it.each([
    [[1, 2, 3], [1, 2, 3], true],
    [[1, 2, 3], [1, 2, 4], false],
    [[0, 2, 3], [1, 2, 3], false],
    [[1, 2, 3], [1, 2], false],
    [[], [], true],
  ])("%j vs %j → %s", (a, b, expected) => {
    expect(constantTimeEqual(new Uint8Array(a), new Uint8Array(b))).toBe(expected);
    expect(constantTimeEqualFallback(a, b)).toBe(expected);
  });

  it("reads every byte even when the first one differs", () => {
    const expected = crypto.getRandomValues(new Uint8Array(32));
    for (const position of [0, 1, 16, 31]) {
      const guess = expected.slice();
      guess[position] = (guess[position] as number) ^ 0xff;
      const { view, reads } = counted(guess);
      expect(constantTimeEqualFallback(expected, view)).toBe(false);
      expect(reads(), `difference at byte ${position}`).toBe(32);
    }
  });
});
