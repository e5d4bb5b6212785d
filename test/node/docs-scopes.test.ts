/**
 * docs/operating.md lists what every admin scope grants: its table must name exactly the scopes
 * the code knows (ADMIN_SCOPES), each once, so a scope added or renamed in code fails here until
 * the operators' documentation says what it grants.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ADMIN_SCOPES } from "../../src/shared/tokens.ts";

const doc = readFileSync(join(import.meta.dirname, "..", "..", "docs", "operating.md"), "utf8");

describe("docs/operating.md scope table", () => {
  it("has one row per admin scope, no more and no fewer", () => {
    const rows = [...doc.matchAll(/^\| `([a-z]+:[a-z]+)` \|/gm)].map((m) => m[1]);
    expect(rows.length).toBeGreaterThan(0);
    expect([...rows].sort()).toEqual([...ADMIN_SCOPES].sort());
  });
});
