/** The url provisioner's host allow-list match, without I/O: exact names and `*.suffix` entries. */
import { describe, expect, it } from "vitest";
import { urlHostAllowed } from "../../../src/control/provisioners/url.ts";

describe("urlHostAllowed", () => {
  const allowed = ["localhost", "*.aws.neon.tech"];

  it.each([
    ["localhost", true],
    ["LOCALHOST", true],
    ["localhost.", true],
    ["ep-cool-1.eu-central-1.aws.neon.tech", true],
    ["aws.neon.tech", false],
    ["evilaws.neon.tech", false],
    ["aws.neon.tech.evil.example", false],
    ["localhost.evil.example", false],
    ["127.0.0.1", false],
    ["", false],
  ])("%s → %s", (host, expected) => {
    expect(urlHostAllowed(host, allowed)).toBe(expected);
  });

  it("an empty list allows nothing, and blank entries match nothing", () => {
    expect(urlHostAllowed("localhost", [])).toBe(false);
    expect(urlHostAllowed("", ["", " "])).toBe(false);
  });
});
