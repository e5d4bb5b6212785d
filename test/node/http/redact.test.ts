/**
 * Log redaction (issue 16, finding 2 and the case-insensitivity item of finding 8): secrets are
 * still redacted, the JWT search finds exactly what the old regex found, and the cost grows
 * linearly with hostile input. Timing is compared by ratio (best of several runs, generous
 * bound), never against an absolute budget: a quadratic scan is 16× slower on 4× the input,
 * a linear one 4×.
 */
import { describe, expect, it } from "vitest";
import { redactSecrets } from "../../../src/shared/redact.ts";
import { MAX_LOGGED_CHARS, scrub } from "../../../src/worker/http/redact.ts";

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZw";

describe("redaction", () => {
  it.each([
    [`/x/${JWT}`, "/x/[redacted-jwt]"],
    [`token-${JWT}`, "token-[redacted-jwt]"],
    [`a.${JWT}`, "a.[redacted-jwt]"],
    [`${JWT}.extra`, "[redacted-jwt].extra"],
    [`x${JWT}`, `x${JWT}`],
    ["eyJ.a.b", "eyJ.a.b"],
    ["eyJa.b", "eyJa.b"],
    [`${JWT} and ${JWT}`, "[redacted-jwt] and [redacted-jwt]"],
    ["Authorization: Bearer abc.def~ghi", "Authorization: Bearer [redacted]"],
    ["authorization: bearer opaque-token-123", "authorization: Bearer [redacted]"],
    ["BEARER opaque", "Bearer [redacted]"],
    ["postgres://u:p@h/db x", "postgres://[redacted] x"],
    ["POSTGRESQL://u:p@h/db", "POSTGRESQL://[redacted]"],
    ["PostgreSQL://u:Secret@h/db", "PostgreSQL://[redacted]"],
    ["connect failed for POSTGRESQL://u:p@h/db: timeout", "connect failed for POSTGRESQL://[redacted] timeout"],
    ['url "postgresql://u:p@h/db" refused', 'url "postgresql://[redacted]" refused'],
    ["postgres://u:pa'ss@h/db", "postgres://[redacted]"],
  ])("%s → %s", (input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
    expect(scrub(input)).toBe(expected);
  });

  it("finds the JWTs the old backtracking pattern found, on 20,000 random strings", () => {
    const old = /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;
    const pieces = ["eyJ", ".", "-", "_", "a", "Z", "9", " ", "/", "e", "yJ"];
    let seed = 16;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let n = 0; n < 20_000; n++) {
      let text = "";
      const length = next() % 14;
      for (let i = 0; i < length; i++) text += pieces[next() % pieces.length];
      expect(redactSecrets(text), JSON.stringify(text)).toBe(text.replace(old, "[redacted-jwt]"));
    }
  });

  it("bounds a logged value and marks the cut", () => {
    const long = `${"a".repeat(MAX_LOGGED_CHARS)}${JWT}`;
    const scrubbed = scrub(long);
    expect(scrubbed.length).toBeLessThan(MAX_LOGGED_CHARS + 40);
    expect(scrubbed).toContain(`[${JWT.length} more chars]`);
    expect(scrubbed).not.toContain("eyJ");
  });
});

/** Best of `runs` timings of `work`, in ms. */
function best(work: () => void, runs = 7): number {
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

const hostile: Record<string, (n: number) => string> = {
  "-eyJ runs": (n) => `/${"-eyJ".repeat(n / 4)}`,
  "eyJa. segments": (n) => `/${"eyJa.".repeat(n / 5)}`,
  "dots then eyJ": (n) => `/${"a.".repeat(n / 2)}eyJ`,
  "bearer words": (n) => `Bearer ${"Bearer ".repeat(n / 7)}!`,
  "postgres: prefixes": (n) => "postgres:".repeat(n / 9),
};

describe("cost on hostile input", () => {
  it.each(Object.keys(hostile))("grows linearly: %s", (name) => {
    const make = hostile[name] as (n: number) => string;
    const small = make(20_000);
    const large = make(80_000);
    redactSecrets(small);
    const ratio =
      best(() => redactSecrets(large)) /
      Math.max(
        best(() => redactSecrets(small)),
        0.05,
      );
    // Linear is ~4; quadratic is ~16.
    expect(ratio, `${name}: ${ratio.toFixed(1)}×`).toBeLessThan(9);
  });

  it("scrubs a 30 KB `-eyJ` path about as fast as a plain one", () => {
    const plain = `/${"a".repeat(30_000)}`;
    const adversarial = `/${"-eyJ".repeat(7_500)}`;
    scrub(adversarial);
    const ratio =
      best(() => scrub(adversarial), 15) /
      Math.max(
        best(() => scrub(plain), 15),
        0.02,
      );
    expect(ratio).toBeLessThan(5);
  });
});
