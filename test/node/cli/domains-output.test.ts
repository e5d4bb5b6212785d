/**
 * What `tenantry domains add` and `tenants show` print for a custom hostname: zone-file lines the
 * customer can paste (CNAME to the fallback origin, ownership and certificate TXT records, or the
 * HTTP token), and only for domains still waiting on the customer.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { dnsLines, printPendingDns } from "../../../src/cli/domains.ts";
import type { DomainView } from "../../../src/control/tenants/rows.ts";

const pending: DomainView = {
  hostname: "shop.acme.com",
  status: "pending",
  customHostname: true,
  sslStatus: "pending_validation",
  validationErrors: [],
  dns: {
    records: [
      { type: "CNAME", name: "shop.acme.com", value: "customers.example.com" },
      { type: "TXT", name: "_cf-custom-hostname.shop.acme.com", value: "abc123" },
    ],
    http: { url: "http://shop.acme.com/.well-known/cf-custom-hostname-challenge/1", body: "abc123" },
  },
  checkedAt: null,
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("custom domain output", () => {
  it("prints the DNS records as zone-file lines, the HTTP token as a comment", () => {
    expect(dnsLines(pending)).toEqual([
      "shop.acme.com. 300 IN CNAME customers.example.com.",
      '_cf-custom-hostname.shop.acme.com. 300 IN TXT "abc123"',
      "# or serve http://shop.acme.com/.well-known/cf-custom-hostname-challenge/1 with the body abc123",
    ]);
  });

  it("shows the records of pending custom hostnames only", () => {
    const printed: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line));
    printPendingDns([
      pending,
      { ...pending, hostname: "live.acme.com", status: "active" },
      { ...pending, hostname: "plain.acme.com", customHostname: false, dns: null },
    ]);
    const text = printed.join("\n");
    expect(text).toContain("shop.acme.com. 300 IN CNAME customers.example.com.");
    expect(text).not.toContain("live.acme.com");
    expect(text).not.toContain("plain.acme.com");
  });
});
