/**
 * How the cron's domain pass shares one invocation's page between settling domains (pending,
 * removing) and settled ones (active, moved, blocked): half each, and a half one side leaves unused
 * goes to the other, so neither a big active fleet nor a backlog of stuck pending domains starves
 * the other side.
 */
import { describe, expect, it } from "vitest";
import { sharePage } from "../../../src/control/domains/poll.ts";

const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("the cron's domain page", () => {
  it("gives a new pending domain a place ahead of thousands of active ones", () => {
    const page = sharePage(["new"], rows("active", 100), 100);
    expect(page).toHaveLength(100);
    expect(page).toContain("new");
  });

  it("keeps half the page for active domains behind a backlog of pending ones", () => {
    const page = sharePage(rows("pending", 100), rows("active", 100), 100);
    expect(page.filter((r) => r.startsWith("pending"))).toHaveLength(50);
    expect(page.filter((r) => r.startsWith("active"))).toHaveLength(50);
  });

  it("fills the page from one side when the other has too few", () => {
    expect(sharePage(rows("pending", 100), rows("active", 3), 100)).toHaveLength(100);
    expect(sharePage(rows("pending", 100), [], 100)).toEqual(rows("pending", 100));
    expect(sharePage([], rows("active", 7), 100)).toEqual(rows("active", 7));
  });
});
