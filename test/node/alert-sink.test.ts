/**
 * The alert webhook `npm run dev` points ALERT_WEBHOOK_URL at: it keeps and prints each alert posted
 * as JSON, lists them at GET /alerts, and refuses what is not a JSON object.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AlertSink, startAlertSink } from "../../src/dev/alert-sink.ts";

let sink: AlertSink;
const printed: string[] = [];

beforeAll(async () => {
  sink = await startAlertSink(0, (line) => printed.push(line));
});
afterAll(async () => {
  await sink?.close();
});

describe("the dev alert sink", () => {
  it("keeps, prints and lists the alerts posted to it", async () => {
    const alert = { source: "tenantry", event: "domain_validation_failed", domain: "shop.globex.invalid" };
    const posted = await fetch(sink.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(alert),
    });
    expect(posted.status).toBe(204);
    expect(await (await fetch(sink.url)).json()).toEqual([alert]);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toContain("domain_validation_failed");
  });

  it("refuses a body that is not JSON", async () => {
    const posted = await fetch(sink.url, { method: "POST", body: "not json" });
    expect(posted.status).toBe(400);
    expect(sink.received).toHaveLength(1);
  });
});
