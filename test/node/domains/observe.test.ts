/**
 * The pure rules from a Cloudflare custom hostname to a domain's state: active only when both the
 * hostname and its certificate are, each validation error listed once, and the alert conditions.
 */
import { describe, expect, it } from "vitest";
import type { CustomHostname } from "../../../src/control/domains/cloudflare.ts";
import { alertCondition, observe } from "../../../src/control/domains/observe.ts";

const hostname = (over: Partial<CustomHostname>): CustomHostname => ({
  id: "id-1",
  hostname: "shop.example.com",
  status: "pending",
  ...over,
});

describe("observe", () => {
  it("is active only when the hostname and its certificate both are", () => {
    expect(observe(hostname({ status: "active", ssl: { status: "pending_validation" } })).status).toBe("pending");
    expect(observe(hostname({ status: "pending", ssl: { status: "active" } })).status).toBe("pending");
    expect(observe(hostname({ status: "active", ssl: { status: "active" } })).status).toBe("active");
    expect(observe(hostname({ status: "active_redeploying", ssl: { status: "active" } })).status).toBe("active");
  });

  it("lists an error reported for both ownership and certificate once", () => {
    const seen = observe(
      hostname({
        verification_errors: ["custom hostname does not CNAME to this zone."],
        ssl: {
          status: "pending_validation",
          validation_errors: [{ message: "custom hostname does not CNAME to this zone." }, { message: "CAA blocks" }],
        },
      }),
    );
    expect(seen.validationErrors).toEqual(["custom hostname does not CNAME to this zone.", "CAA blocks"]);
    expect(alertCondition(seen)).toBe("validation_failed");
  });

  it("turns a hostname Cloudflare no longer has deleted, and moved or blocked ones alert", () => {
    expect(observe(undefined)).toMatchObject({ status: "deleted" });
    expect(alertCondition(observe(undefined))).toBe("deleted");
    expect(alertCondition(observe(hostname({ status: "moved" })))).toBe("moved");
    expect(alertCondition(observe(hostname({ status: "blocked" })))).toBe("blocked");
    expect(alertCondition(observe(hostname({ status: "pending" })))).toBeNull();
  });
});
