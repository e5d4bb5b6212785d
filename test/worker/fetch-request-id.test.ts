/**
 * Request ids are the edge's, not the client's (issue 16, finding 3): a client's `X-Request-Id`
 * is neither echoed as the id, nor put in problem+json, nor stored as the audit log's request id;
 * it is logged apart, sanitized, as `clientRequestId`.
 */
import { eq } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { auditLog } from "../../src/control/schema.ts";
import { clientRequestId } from "../../src/worker/http/request-id.ts";
import { adminToken, call, controlDeps, json, seedKv } from "./support.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const FORGED = "forged-audit-id";

beforeAll(seedKv);
afterEach(() => vi.restoreAllMocks());

function logLines(): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    if (typeof line === "string" && line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return lines;
}

describe("request ids", () => {
  it("a tenant request gets a fresh id whatever X-Request-Id says, and logs the client's apart", async () => {
    const lines = logLines();
    const response = await call("http://acme.localhost/api/products", {
      headers: { "x-request-id": FORGED },
      env: { LOG_LEVEL: "info" },
    });
    expect(response.status).toBe(200);
    const id = response.headers.get("x-request-id") ?? "";
    expect(id).toMatch(UUID);
    const request = lines.find((line) => line.event === "request");
    expect(request).toMatchObject({ requestId: id, clientRequestId: FORGED });
  });

  it("a problem+json names the edge's id, never the client's", async () => {
    const response = await call("http://nobody.localhost/api/products", { headers: { "x-request-id": FORGED } });
    expect(response.status).toBe(404);
    const problem = (await response.json()) as { requestId: string };
    expect(problem.requestId).toMatch(UUID);
    expect(problem.requestId).toBe(response.headers.get("x-request-id"));
  });

  it("two requests with the same client id get different ids", async () => {
    const headers = { "x-request-id": FORGED };
    const [a, b] = await Promise.all([
      call("http://acme.localhost/healthz", { headers }),
      call("http://acme.localhost/healthz", { headers }),
    ]);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  it("the audit log stores the edge's id, not the client's", async () => {
    const slug = `rid-${crypto.randomUUID().slice(0, 8)}`;
    const response = await call("http://admin.localhost/v1/tenants", {
      ...json({ slug, region: "mars-1" }),
      headers: { "content-type": "application/json", "x-request-id": FORGED },
      token: await adminToken(),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    const id = response.headers.get("x-request-id") ?? "";
    expect(id).toMatch(UUID);
    const rows = await controlDeps("test").db.select().from(auditLog).where(eq(auditLog.target, slug));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.requestId).toBe(id);
  });

  it("keeps a client id bounded and free of anything that could fake log structure", () => {
    expect(clientRequestId(undefined)).toBeUndefined();
    expect(clientRequestId('"}{')).toBeUndefined();
    expect(clientRequestId("trace-1:abc/2")).toBe("trace-1:abc/2");
    expect(clientRequestId(`a"b\\c d${"x".repeat(100)}`)?.length).toBe(64);
    expect(clientRequestId('a"b\\c')).toBe("abc");
  });
});
