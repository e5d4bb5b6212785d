/**
 * A client cannot make the Worker log (or scrub) an unbounded string (issue 16, finding 2): the
 * request path of an unknown host is logged cut to a bounded length, and a hostile `-eyJ` path is
 * logged like any other. Deterministic: it checks what is logged, not how long it took.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_LOGGED_CHARS } from "../../src/worker/http/redact.ts";
import { call } from "./support.ts";

afterEach(() => vi.restoreAllMocks());

async function requestLine(path: string): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    if (typeof line === "string") lines.push(line);
  });
  const response = await call(`http://nobody-here.localhost${path}`, { env: { LOG_LEVEL: "info" } });
  expect(response.status).toBe(404);
  const line = lines.find((l) => l.includes('"event":"request"'));
  if (!line) throw new Error("no request log line");
  return line;
}

describe("logged request paths", () => {
  it.each([
    ["plain", `/${"a".repeat(15_000)}`],
    ["-eyJ", `/${"-eyJ".repeat(3_750)}`],
  ])("a 15 KB %s path is logged cut to the bound", async (_name, path) => {
    const line = await requestLine(path);
    expect(line.length).toBeLessThan(MAX_LOGGED_CHARS + 500);
    expect(line).toContain("more chars]");
  });
});
