import { describe, expect, it } from "vitest";
import { adminToken, call, seedKv } from "./support.ts";

describe("export smoke", () => {
  it("exports acme through the queue and downloads it with a signed link", async () => {
    await seedKv();
    const token = await adminToken();
    const requested = await call("http://admin.localhost/v1/tenants/acme/exports", { method: "POST", token });
    const exp = (await requested.json()) as { id: string; status: string };
    expect(requested.status, JSON.stringify(exp)).toBe(202);
    let status = exp.status;
    for (let i = 0; i < 100 && status !== "complete" && status !== "failed"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      status = (
        (await (await call(`http://admin.localhost/v1/exports/${exp.id}`, { token })).json()) as { status: string }
      ).status;
    }
    expect(status).toBe("complete");
    const link = (await (
      await call(`http://admin.localhost/v1/exports/${exp.id}/link`, { method: "POST", token })
    ).json()) as { url: string };
    const download = await call(link.url);
    expect(download.status).toBe(200);
    const text = await new Response(download.body?.pipeThrough(new DecompressionStream("gzip"))).text();
    expect(text).toContain('COPY "public"."products"');
    expect(text).toContain("ACME-ANVIL");
    expect((await call(link.url.replace("acme.localhost", "globex.localhost"))).status).toBe(403);
  });
});
