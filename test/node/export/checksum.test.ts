/**
 * The per-table checksum of the export manifest: equal for equal sets of lines in any order, and
 * different when any line differs (one character, a character moved across a line boundary, a line
 * added or dropped, a duplicate), including odd lengths and characters outside the BMP.
 */
import { describe, expect, it } from "vitest";
import { LineChecksum } from "../../../src/control/export/engine.ts";

function sum(lines: readonly string[]): string {
  const checksum = new LineChecksum();
  for (const line of lines) checksum.add(line);
  return checksum.hex();
}

const BASE = ["1\tacme\t\\N", "2\tglobex\t12.50", "3\tünï 🌍\tx", "", "odd"];

describe("LineChecksum", () => {
  it("is 16 hex digits and ignores the order of lines", () => {
    expect(sum(BASE)).toMatch(/^[0-9a-f]{16}$/);
    expect(sum([...BASE].reverse())).toBe(sum(BASE));
    expect(sum([BASE[2], BASE[0], BASE[4], BASE[1], BASE[3]] as string[])).toBe(sum(BASE));
  });

  it.each([
    ["one character changed", ["1\tacme\t\\N", "2\tglobex\t12.51", "3\tünï 🌍\tx", "", "odd"]],
    ["a character moved to the next line", ["1\tacme\t\\", "N2\tglobex\t12.50", "3\tünï 🌍\tx", "", "odd"]],
    ["the last character of an odd-length line", ["1\tacme\t\\N", "2\tglobex\t12.50", "3\tünï 🌍\tx", "", "ode"]],
    ["a character outside the BMP", ["1\tacme\t\\N", "2\tglobex\t12.50", "3\tünï 🌎\tx", "", "odd"]],
    ["an empty line dropped", ["1\tacme\t\\N", "2\tglobex\t12.50", "3\tünï 🌍\tx", "odd"]],
    ["a line repeated", [...BASE, "odd"]],
    ["two fields swapped", ["acme\t1\t\\N", "2\tglobex\t12.50", "3\tünï 🌍\tx", "", "odd"]],
  ])("changes when %s", (_, lines) => {
    expect(sum(lines)).not.toBe(sum(BASE));
  });

  it("addLines hashes each line of a page in place, as add does line by line, and counts them", () => {
    for (const page of [BASE.join("\n"), "one", "", "\n", "a\n\nb\n", `${"x".repeat(9999)}\n🌍`]) {
      const whole = new LineChecksum();
      expect(whole.addLines(page)).toBe(page.split("\n").length);
      expect(whole.hex(), JSON.stringify(page.slice(0, 20))).toBe(sum(page.split("\n")));
    }
    const paged = new LineChecksum();
    paged.addLines(BASE.slice(0, 2).join("\n"));
    paged.addLines(BASE.slice(2).join("\n"));
    expect(paged.hex()).toBe(sum(BASE));
  });

  it("tells apart many near-identical lines", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(sum([`${i}\tv`]));
    expect(seen.size).toBe(20_000);
  });
});
