import { describe, expect, it } from "vitest";
import {
  classifyPlatformHost,
  type HostRejection,
  isValidSlug,
  normalizeHost,
  platformSlug,
} from "../../../src/shared/host.ts";

const label63 = "a".repeat(63);
const label64 = "a".repeat(64);
/** 4 × 63 + 3 dots = 255 characters; trimmed to exactly 253 and 254 below. */
const name253 = `${label63}.${label63}.${label63}.${"a".repeat(61)}`;
const name254 = `${label63}.${label63}.${label63}.${"a".repeat(62)}`;

describe("normalizeHost rejects", () => {
  const cases: [string, string, HostRejection][] = [
    // Empty and length limits (RFC 1035 §2.3.4).
    ["empty string", "", "empty"],
    ["a lone dot", ".", "empty"],
    ["only a port", ":8080", "empty"],
    ["a 64-character label", `${label64}.example`, "label_too_long"],
    ["a 64-character last label", `example.${label64}`, "label_too_long"],
    ["a 254-character name", name254, "name_too_long"],
    ["a 254-character name with a trailing dot", `${name254}.`, "name_too_long"],
    ["hostile input far beyond any name", `${"a.".repeat(2000)}example`, "name_too_long"],
    ["an IDN whose punycode exceeds 63 characters", `${"ü".repeat(60)}.example`, "label_too_long"],

    // IPv4 in every spelling the WHATWG URL parser accepts, and numeric last labels.
    ["dotted IPv4", "127.0.0.1", "ip_literal"],
    ["dotted IPv4 with a trailing dot", "127.0.0.1.", "ip_literal"],
    ["dotted IPv4 with a port", "10.0.0.1:443", "ip_literal"],
    ["short IPv4", "127.1", "ip_literal"],
    ["hex IPv4 octet", "0x7f.0.0.1", "ip_literal"],
    ["uppercase hex IPv4 octet", "0X7F.0.0.1", "ip_literal"],
    ["octal IPv4", "0177.0.0.01", "ip_literal"],
    ["decimal IPv4", "2130706433", "ip_literal"],
    ["hex IPv4", "0x7f000001", "ip_literal"],
    ["bare 0x last label", "a.0x", "ip_literal"],
    ["hex last label", "example.0x1f", "ip_literal"],
    ["out-of-range IPv4", "1.2.3.256", "ip_literal"],
    ["numeric TLD", "example.123", "ip_literal"],
    ["cloud metadata address", "169.254.169.254", "ip_literal"],
    ["fullwidth-digit IPv4", "１２７．０．０．１", "ip_literal"],

    // IPv6 (RFC 3986 §3.2.2 IP-literal).
    ["bracketed IPv6 loopback", "[::1]", "ip_literal"],
    ["bracketed IPv6 with a port", "[::1]:8787", "ip_literal"],
    ["bracketed IPv4-mapped IPv6", "[::ffff:127.0.0.1]", "ip_literal"],
    ["bracketed IPvFuture", "[v1.fe80::a+en1]", "ip_literal"],
    ["unbracketed IPv6", "::1", "ip_literal"],
    ["unbracketed link-local IPv6", "fe80::1", "ip_literal"],

    // Ports.
    ["empty port", "acme.example:", "invalid_port"],
    ["non-numeric port", "acme.example:http", "invalid_port"],
    ["port above 65535", "acme.example:65536", "invalid_port"],
    ["six-digit port", "acme.example:000080", "invalid_port"],
    ["signed port", "acme.example:+80", "invalid_port"],

    // Dots and labels.
    ["empty label in the middle", "a..b", "empty_label"],
    ["leading dot", ".acme.example", "empty_label"],
    ["two trailing dots", "acme.example..", "empty_label"],
    ["ideographic full stop making an empty label", "acme\u3002.example", "empty_label"],
    ["a label that maps to nothing", "\u00ad.example", "empty_label"],
    ["label starting with a hyphen", "-a.b", "invalid_label"],
    ["label ending with a hyphen", "a-.b", "invalid_label"],
    ["last label ending with a hyphen", "acme.example-", "invalid_label"],
    ["hyphen-only label", "-.example", "invalid_label"],
    ["bare localhost", "localhost", "single_label"],
    ["bare localhost with a trailing dot", "localhost.", "single_label"],
    ["single label with a port", "intranet:8080", "single_label"],

    // Characters the URL parser would reinterpret, and other non-LDH ASCII.
    ["underscore", "my_shop.example", "invalid_character"],
    ["DNS-SD style underscore label", "_dmarc.example", "invalid_character"],
    ["space", "acme example.com", "invalid_character"],
    ["leading space", " acme.example", "invalid_character"],
    ["trailing space", "acme.example ", "invalid_character"],
    ["tab (the URL parser strips it)", "ac\tme.example", "invalid_character"],
    ["newline", "acme.example\n", "invalid_character"],
    ["percent-encoded dot", "acme%2eexample.com", "invalid_character"],
    ["percent-encoded letter", "%61cme.example", "invalid_character"],
    ["userinfo", "user@acme.example", "invalid_character"],
    ["path after the host", "acme.example/evil", "invalid_character"],
    ["backslash", "acme.example\\evil.com", "invalid_character"],
    ["query", "acme.example?x", "invalid_character"],
    ["fragment", "acme.example#x", "invalid_character"],
    ["null byte", "acme.example\u0000.evil.com", "invalid_character"],
    ["other control character", "acme\u0001.example", "invalid_character"],
    ["DEL", "acme\u007f.example", "invalid_character"],
    ["asterisk wildcard", "*.acme.example", "invalid_character"],
    ["stray closing bracket", "acme].example", "invalid_character"],
    ["quote", 'acme".example', "invalid_character"],
    ["comma", "acme.example,evil.com", "invalid_character"],

    // IDNA (RFC 5890/5891, UTS #46).
    ["empty punycode", "xn--.example", "invalid_idn"],
    ["undecodable punycode", "xn--abc.example", "invalid_idn"],
    ["punycode with a bad digit", "xn--a.example", "invalid_idn"],
    ["punycode whose U-label is plain ASCII", "xn--zz-.example", "invalid_label"],
    ["punycode with -- in positions 3-4 of the U-label", "xn--ab--c.example", "invalid_idn"],
    ["non-NFC punycode", "xn--cafe-yvc.example", "invalid_idn"],
    ["empty punycode TLD", "xn--bcher-kva.xn--", "invalid_idn"],
    ["U-label starting with a hyphen", "-ü.example", "invalid_idn"],
    ["U-label ending with a hyphen", "ü-.example", "invalid_idn"],
    ["A-label whose U-label starts with a hyphen", "xn----eha.example", "invalid_idn"],
    ["zero-width joiner outside a permitted context", "a\u200db.example", "invalid_idn"],
    ["fullwidth solidus", "ab\uff0fc.example", "invalid_idn"],
    ["fullwidth percent sign", "a\uff05.example", "invalid_idn"],
    ["only a character that maps to nothing", "\u00ad", "invalid_idn"],
    ["lone surrogate", "a\ud800.example", "invalid_idn"],
  ];

  it("has a thorough table", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)("%s: %j → %s", (_name, input, reason) => {
    expect(normalizeHost(input)).toEqual({ ok: false, reason });
  });
});

describe("normalizeHost accepts", () => {
  const cases: [string, string, string][] = [
    ["a plain two-label name", "acme.example", "acme.example"],
    ["a dev tenant host", "acme.localhost", "acme.localhost"],
    ["a deep subdomain", "shop.eu.acme.example.com", "shop.eu.acme.example.com"],
    ["uppercase, lowercased", "ACME.Example.COM", "acme.example.com"],
    ["one trailing dot, stripped", "acme.example.", "acme.example"],
    ["a port, stripped", "acme.localhost:8787", "acme.localhost"],
    ["port 0", "acme.localhost:0", "acme.localhost"],
    ["port 65535", "acme.localhost:65535", "acme.localhost"],
    ["port, trailing dot and uppercase together", "ACME.Example.:443", "acme.example"],
    ["digits and inner hyphens", "shop-2.acme-corp.example", "shop-2.acme-corp.example"],
    ["a digit-only label that is not the last", "123.example", "123.example"],
    ["a last label that merely starts with digits", "acme.1e", "acme.1e"],
    ["0x followed by a non-hex letter", "0xg.example", "0xg.example"],
    ["-- in an ordinary label (R-LDH, as real CDN hosts use)", "r3---sn-abc.example", "r3---sn-abc.example"],
    ["a 63-character label", `${label63}.example`, `${label63}.example`],
    ["a 253-character name", name253, name253],
    ["a 253-character name with a trailing dot", `${name253}.`, name253],
    ["a Unicode IDN", "bücher.example", "xn--bcher-kva.example"],
    ["an uppercase Unicode IDN", "BÜCHER.example", "xn--bcher-kva.example"],
    ["a valid A-label as given", "xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["an uppercase A-label", "XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"],
    ["a Unicode TLD", "例え.テスト", "xn--r8jz45g.xn--zckzah"],
    ["a decomposed accent, NFC-normalised", "cafe\u0301.example", "xn--caf-dma.example"],
    ["fullwidth letters and dot (UTS #46 mapping)", "ａｃｍｅ．example", "acme.example"],
    ["an ideographic full stop as the trailing dot", "acme.example\u3002", "acme.example"],
    ["a soft hyphen, which maps to nothing", "ac\u00adme.example", "acme.example"],
    // Emoji labels: UTS #46 (and so every browser) turns them into a well-formed A-label. IDNA2008
    // would refuse them, but they are harmless here: such a name just matches no tenant.
    ["an emoji-only label", "🙂.example", "xn--938h.example"],
  ];

  it.each(cases)("%s: %j → %j", (_name, input, host) => {
    expect(normalizeHost(input)).toEqual({ ok: true, host });
  });

  it("is idempotent on its own output", () => {
    for (const [, input] of cases) {
      const first = normalizeHost(input);
      if (!first.ok) throw new Error(`expected ${JSON.stringify(input)} to be accepted`);
      expect(normalizeHost(first.host)).toEqual(first);
    }
  });

  it("agrees with what the URL parser hands it for accepted names", () => {
    for (const [, input, host] of cases) {
      if (input.includes(":")) continue;
      expect(normalizeHost(new URL(`http://${input}/`).hostname)).toEqual({ ok: true, host });
    }
  });
});

describe("platformSlug", () => {
  it.each([
    ["acme.localhost", "localhost", "acme"],
    ["acme.tenantry.app", "tenantry.app", "acme"],
    ["acme-2.tenantry.app", "tenantry.app", "acme-2"],
    ["acme.tenantry.app", "TENANTRY.app.", "acme"],
  ])("%s on %s → %s", (host, domain, slug) => {
    expect(platformSlug(host, domain)).toBe(slug);
  });

  it.each([
    ["the platform domain itself", "tenantry.app", "tenantry.app"],
    ["two labels below the platform domain", "shop.acme.tenantry.app", "tenantry.app"],
    ["another domain", "acme.example.com", "tenantry.app"],
    ["a domain that only ends with the same characters", "acmetenantry.app", "tenantry.app"],
    ["a look-alike suffix", "acme.eviltenantry.app", "tenantry.app"],
    ["an empty platform domain", "acme.localhost", ""],
    ["a platform domain that is only a dot", "acme.localhost", "."],
    ["an invalid slug (too short)", "ab.tenantry.app", "tenantry.app"],
    ["an invalid slug (double hyphen)", "a--b.tenantry.app", "tenantry.app"],
    ["an A-label slug", "xn--bcher-kva.tenantry.app", "tenantry.app"],
    ["a numeric-first slug", "1acme.tenantry.app", "tenantry.app"],
    ["an empty slug", ".tenantry.app", "tenantry.app"],
  ])("is undefined for %s", (_name, host, domain) => {
    expect(platformSlug(host, domain)).toBeUndefined();
  });
});

describe("classifyPlatformHost", () => {
  it.each([
    ["acme.tenantry.app", { kind: "slug", slug: "acme" }],
    ["ab.tenantry.app", { kind: "invalid_slug" }],
    ["a--b.tenantry.app", { kind: "invalid_slug" }],
    ["xn--bcher-kva.tenantry.app", { kind: "invalid_slug" }],
    ["shop.ab.tenantry.app", { kind: "other" }],
    ["tenantry.app", { kind: "other" }],
    ["acme.eviltenantry.app", { kind: "other" }],
    ["acme.example.com", { kind: "other" }],
  ])("%s → %j", (host, expected) => {
    expect(classifyPlatformHost(host, "tenantry.app")).toEqual(expected);
  });

  it("matches nothing without a platform domain", () => {
    expect(classifyPlatformHost("ab.localhost", "")).toEqual({ kind: "other" });
  });
});

describe("isValidSlug", () => {
  it.each(["acme", "globex", "abc", "a1b", "acme-corp", "a-b-c", `a${"b".repeat(31)}`])("accepts %s", (slug) => {
    expect(isValidSlug(slug)).toBe(true);
  });

  it.each([
    "",
    "ab",
    `a${"b".repeat(32)}`,
    "Acme",
    "1acme",
    "-acme",
    "acme-",
    "ac--me",
    "xn--bcher-kva",
    "acme.corp",
    "acme_corp",
    "acme corp",
    "äcme",
  ])("rejects %j", (slug) => {
    expect(isValidSlug(slug)).toBe(false);
  });
});
