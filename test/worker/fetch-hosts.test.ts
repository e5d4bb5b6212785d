/**
 * Malformed and hostile hosts through the whole Worker. The host is whatever
 * `new URL(request.url).hostname` says (ARCHITECTURE.md "Edge"), so each row names the URL sent and
 * the hostname the Worker actually sees after the WHATWG URL parser has had its say, then the
 * answer: a 4xx problem with `invalid_host` or `tenant_not_found`, never a 5xx, except for the
 * spellings that name acme's host and must serve acme.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, seedKv } from "./support.ts";

type HostCode = "invalid_host" | "tenant_not_found" | "not_found";

interface HostileCase {
  /** What the row is about. */
  readonly name: string;
  /** The URL handed to `new Request`. */
  readonly url: string;
  /** `new URL(url).hostname`: what the Worker sees. */
  readonly hostname: string;
  /** Acceptable codes; more than one only where the URL parser's leniency decides (see the row). */
  readonly codes: readonly HostCode[];
}

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
}

const path = "/api/products";
const label63 = "a".repeat(63);
const label64 = "b".repeat(64);
/** 4 × 63-character labels: 255 characters before the TLD, over the 253 limit (RFC 1035). */
const name254Plus = `${[label63, label63, label63, label63].join(".")}.localhost`;
/** Over the 1024-character cap on raw input, made of short valid labels. */
const name2000 = `${"ab.".repeat(667)}localhost`;

const invalid: readonly HostCode[] = ["invalid_host"];
const notFound: readonly HostCode[] = ["tenant_not_found"];

const hostile: readonly HostileCase[] = [
  // IP literals, in the many spellings the URL parser folds into dotted IPv4 or bracketed IPv6.
  { name: "IPv4 loopback", url: "http://127.0.0.1", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 as one decimal number", url: "http://2130706433", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 as one hex number", url: "http://0x7f000001", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 with octal part", url: "http://0177.0.0.1", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 short form", url: "http://127.1", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 hex short form", url: "http://0x7f.1", hostname: "127.0.0.1", codes: invalid },
  { name: "IPv4 any address", url: "http://0.0.0.0", hostname: "0.0.0.0", codes: invalid },
  { name: "IPv4 with a port", url: "http://10.0.0.1:8787", hostname: "10.0.0.1", codes: invalid },
  { name: "cloud metadata address", url: "http://169.254.169.254", hostname: "169.254.169.254", codes: invalid },
  { name: "IPv6 loopback", url: "http://[::1]", hostname: "[::1]", codes: invalid },
  { name: "IPv6 unspecified", url: "http://[::]", hostname: "[::]", codes: invalid },
  { name: "IPv4-mapped IPv6", url: "http://[::ffff:127.0.0.1]", hostname: "[::ffff:7f00:1]", codes: invalid },
  { name: "IPv6 with a port", url: "http://[::1]:8787", hostname: "[::1]", codes: invalid },
  // Dots and labels.
  { name: "two trailing dots", url: "http://acme.localhost..", hostname: "acme.localhost..", codes: invalid },
  { name: "leading dot", url: "http://.acme.localhost", hostname: ".acme.localhost", codes: invalid },
  { name: "empty label in the middle", url: "http://a..b", hostname: "a..b", codes: invalid },
  { name: "empty label before the tenant", url: "http://acme..localhost", hostname: "acme..localhost", codes: invalid },
  { name: "label starting with a hyphen", url: "http://-a.localhost", hostname: "-a.localhost", codes: invalid },
  { name: "label ending with a hyphen", url: "http://a-.localhost", hostname: "a-.localhost", codes: invalid },
  {
    name: "tenant label ending with a hyphen",
    url: "http://acme-.localhost",
    hostname: "acme-.localhost",
    codes: invalid,
  },
  { name: "64-character label", url: `http://${label64}.localhost`, hostname: `${label64}.localhost`, codes: invalid },
  { name: "name over 253 characters", url: `http://${name254Plus}`, hostname: name254Plus, codes: invalid },
  { name: "name over 1024 characters", url: `http://${name2000}`, hostname: name2000, codes: invalid },
  // Characters outside letters, digits and hyphens that the URL parser lets through.
  { name: "underscore", url: "http://a_b.localhost", hostname: "a_b.localhost", codes: invalid },
  { name: "leading underscore", url: "http://_acme.localhost", hostname: "_acme.localhost", codes: invalid },
  { name: "asterisk (wildcard)", url: "http://*.localhost", hostname: "*.localhost", codes: invalid },
  { name: "asterisk inside a label", url: "http://a*b.localhost", hostname: "a*b.localhost", codes: invalid },
  { name: "dollar sign", url: "http://a$b.localhost", hostname: "a$b.localhost", codes: invalid },
  { name: "quote", url: "http://a'b.localhost", hostname: "a'b.localhost", codes: invalid },
  { name: "double quote", url: 'http://a"b.localhost', hostname: 'a"b.localhost', codes: invalid },
  {
    name: "comma",
    url: "http://acme.localhost,globex.localhost",
    hostname: "acme.localhost,globex.localhost",
    codes: invalid,
  },
  { name: "semicolon", url: "http://a;b.localhost", hostname: "a;b.localhost", codes: invalid },
  { name: "equals and plus", url: "http://a=b+c.localhost", hostname: "a=b+c.localhost", codes: invalid },
  { name: "braces", url: "http://a{b}.localhost", hostname: "a{b}.localhost", codes: invalid },
  { name: "backtick", url: "http://a`b.localhost", hostname: "a`b.localhost", codes: invalid },
  { name: "tilde", url: "http://a~b.localhost", hostname: "a~b.localhost", codes: invalid },
  // Punycode: malformed A-labels are refused, well-formed ones are just unknown hosts.
  { name: "empty punycode label", url: "http://xn--.localhost", hostname: "xn--.localhost", codes: invalid },
  {
    name: "punycode ending with a hyphen",
    url: "http://xn--zz-.localhost",
    hostname: "xn--zz-.localhost",
    codes: invalid,
  },
  { name: "punycode of only hyphens", url: "http://xn----.localhost", hostname: "xn----.localhost", codes: invalid },
  {
    // Decodes to U+0080, a C1 control. Node's URL parser throws on it; workerd's lets it through and
    // host.ts's A-label check does not reject disallowed code points, so it is an unknown host.
    name: "punycode decoding to a control character",
    url: "http://xn--a.localhost",
    hostname: "xn--a.localhost",
    codes: ["invalid_host", "tenant_not_found"],
  },
  { name: "IDN (bücher)", url: "http://bücher.localhost", hostname: "xn--bcher-kva.localhost", codes: notFound },
  {
    name: "IDN already in punycode",
    url: "http://xn--bcher-kva.localhost",
    hostname: "xn--bcher-kva.localhost",
    codes: notFound,
  },
  { name: "emoji label", url: "http://🙂.localhost", hostname: "xn--938h.localhost", codes: notFound },
  { name: "sharp s (not folded to ss)", url: "http://ß.localhost", hostname: "xn--zca.localhost", codes: notFound },
  // Names that are well formed but serve no tenant.
  { name: "bare localhost (single label)", url: "http://localhost", hostname: "localhost", codes: invalid },
  { name: "bare slug (single label)", url: "http://acme", hostname: "acme", codes: invalid },
  { name: "no host at all", url: "http:///api", hostname: "api", codes: invalid },
  // The admin host serves the admin API only: tenant routes there are unknown routes, never a tenant.
  {
    name: "admin host is not a tenant",
    url: "http://admin.localhost",
    hostname: "admin.localhost",
    codes: ["not_found"],
  },
  {
    name: "tenant host as a prefix",
    url: "http://acme.localhost.evil.com",
    hostname: "acme.localhost.evil.com",
    codes: notFound,
  },
  {
    name: "subdomain of a tenant host",
    url: "http://evil.acme.localhost",
    hostname: "evil.acme.localhost",
    codes: notFound,
  },
  { name: "unrelated domain", url: "http://evil.com", hostname: "evil.com", codes: notFound },
  {
    name: "userinfo that looks like the host",
    url: "http://acme.localhost@evil.com",
    hostname: "evil.com",
    codes: notFound,
  },
  {
    name: "percent-encoded dot inside a label",
    url: "http://a%2eb.localhost",
    hostname: "a.b.localhost",
    codes: notFound,
  },
  {
    name: "63-character label (valid, unknown)",
    url: `http://${label63}.localhost`,
    hostname: `${label63}.localhost`,
    codes: notFound,
  },
  {
    name: "double hyphen (valid, unknown)",
    url: "http://ab--cd.localhost",
    hostname: "ab--cd.localhost",
    codes: notFound,
  },
  {
    name: "slug under the wrong parent",
    url: "http://initech.localhost",
    hostname: "initech.localhost",
    codes: notFound,
  },
  {
    name: "nested platform subdomain",
    url: "http://a.acme.tenantry.localhost",
    hostname: "a.acme.tenantry.localhost",
    codes: notFound,
  },
  {
    name: "invalid slug on the platform domain",
    url: "http://ab.tenantry.localhost",
    hostname: "ab.tenantry.localhost",
    codes: notFound,
  },
  { name: "platform domain itself", url: "http://tenantry.localhost", hostname: "tenantry.localhost", codes: notFound },
];

/** Spellings of acme's hosts: the URL parser or the edge normalises each to a key acme is stored under. */
const acmeSpellings: readonly { name: string; url: string; hostname: string }[] = [
  { name: "canonical host", url: "http://acme.localhost", hostname: "acme.localhost" },
  { name: "one trailing dot (fully qualified)", url: "http://acme.localhost.", hostname: "acme.localhost." },
  { name: "uppercase", url: "http://ACME.LOCALHOST", hostname: "acme.localhost" },
  { name: "mixed case with a trailing dot", url: "http://AcMe.LocalHost.", hostname: "acme.localhost." },
  { name: "explicit port", url: "http://acme.localhost:8787", hostname: "acme.localhost" },
  { name: "https with the default port", url: "https://acme.localhost:443", hostname: "acme.localhost" },
  {
    name: "platform subdomain (slug:acme)",
    url: "http://acme.tenantry.localhost",
    hostname: "acme.tenantry.localhost",
  },
  {
    name: "platform subdomain, uppercase, trailing dot",
    url: "http://ACME.Tenantry.LOCALHOST.",
    hostname: "acme.tenantry.localhost.",
  },
  // Done by the WHATWG URL parser before the Worker sees the request: each is the same host name.
  {
    name: "percent-encoded dot (decoded by the URL parser)",
    url: "http://acme%2elocalhost",
    hostname: "acme.localhost",
  },
  { name: "percent-encoded letter", url: "http://%41cme.localhost", hostname: "acme.localhost" },
  { name: "fullwidth letters (UTS #46 mapping)", url: "http://ａｃｍｅ.localhost", hostname: "acme.localhost" },
  { name: "ideographic full stop", url: "http://acme。localhost", hostname: "acme.localhost" },
  { name: "soft hyphen (mapped to nothing)", url: "http://a\u00adcme.localhost", hostname: "acme.localhost" },
  { name: "tab inside the host (stripped)", url: "http://acme.local\thost", hostname: "acme.localhost" },
];

/** Hosts that cannot be sent to the Worker at all: `new Request` refuses the URL. */
const unsendable: readonly { name: string; url: string }[] = [
  { name: "NUL byte", url: "http://a%00b.localhost" },
  { name: "space", url: "http://acme.local host" },
  { name: "five-part IPv4", url: "http://1.2.3.4.5" },
  { name: "IPv4 part out of range", url: "http://999.999.999.999" },
  { name: "numeric last label", url: "http://example.123" },
  { name: "percent-encoded numeric last label", url: "http://a.b.c.%30" },
  { name: "port out of range", url: "http://acme.localhost:65536" },
  { name: "non-numeric port", url: "http://acme.localhost:http" },
  { name: "IPv6 zone id", url: "http://[fe80::1%25eth0]" },
  { name: "unterminated IPv6 literal", url: "http://[::1" },
  { name: "percent-encoded slash", url: "http://acme.localhost%2fevil.com" },
  { name: "zero-width joiner", url: "http://a\u200db.localhost" },
  { name: "right-to-left override", url: "http://a\u202eb.localhost" },
  { name: "leading combining mark", url: "http://\u0301a.localhost" },
];

const acmeSkus = ["ACME-ANVIL", "ACME-MAGNET", "ACME-SKATES"];

beforeAll(seedKv);

async function expectProblem(response: Response, codes: readonly HostCode[]): Promise<Problem> {
  expect(response.status).toBeGreaterThanOrEqual(400);
  expect(response.status).toBeLessThan(500);
  expect(response.headers.get("content-type")).toContain("application/problem+json");
  const body = (await response.json()) as Problem;
  expect(codes).toContain(body.code);
  expect(body.status).toBe(response.status);
  expect(response.status).toBe(body.code === "invalid_host" ? 400 : 404);
  expect(body.type).toEqual(expect.any(String));
  expect(body.title).toEqual(expect.any(String));
  return body;
}

describe("fetch: hostile hosts are refused with a 4xx problem, never a 5xx", () => {
  it("covers at least 30 hostile hosts", () => {
    expect(hostile.length).toBeGreaterThanOrEqual(30);
  });

  it.each(hostile)("$name ($hostname)", async ({ url, hostname, codes }) => {
    expect(new URL(url).hostname).toBe(hostname);
    await expectProblem(await call(`${url}${path}`), codes);
  });

  it.each(hostile)("$name: also refused on an authenticated route and with a trailing path", async ({ url, codes }) => {
    await expectProblem(await call(`${url}/api/carts`, { method: "POST" }), codes);
    await expectProblem(await call(`${url}/api/products/../../healthz/x`), codes);
  });

  it.each(unsendable)("$name cannot be put in a request URL at all", ({ url }) => {
    expect(() => new Request(`${url}${path}`)).toThrow(TypeError);
  });
});

describe("fetch: spellings of acme's host serve acme", () => {
  it.each(acmeSpellings)("$name ($hostname)", async ({ url, hostname }) => {
    expect(new URL(url).hostname).toBe(hostname);
    const response = await call(`${url}${path}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { items: { sku: string }[] };
    const skus = body.items.map((p) => p.sku);
    expect(skus).toEqual(expect.arrayContaining(acmeSkus));
    expect(skus.some((sku) => sku.startsWith("GLOBEX-") || sku === "TPS")).toBe(false);
  });

  it("a multi-label custom domain serves its own tenant", async () => {
    const response = await call(`http://SHOP.Initech.localhost.${path}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { items: { sku: string }[] };
    expect(body.items.map((p) => p.sku)).toContain("TPS");
    expect(body.items.map((p) => p.sku)).not.toContain("ACME-ANVIL");
  });
});

describe("fetch: the host comes from the URL, never from a header", () => {
  it("Host and X-Forwarded-Host headers naming globex do not move an acme request", async () => {
    const response = await call(`http://acme.localhost${path}`, {
      headers: { host: "globex.localhost", "x-forwarded-host": "globex.localhost", forwarded: "host=globex.localhost" },
    });
    expect(response.status).toBe(200);
    const skus = ((await response.json()) as { items: { sku: string }[] }).items.map((p) => p.sku);
    expect(skus).toEqual(expect.arrayContaining(acmeSkus));
    expect(skus.some((sku) => sku.startsWith("GLOBEX-"))).toBe(false);
  });

  it("a Host header naming acme does not rescue an unknown host", async () => {
    const response = await call(`http://evil.com${path}`, {
      headers: { host: "acme.localhost", "x-forwarded-host": "acme.localhost" },
    });
    await expectProblem(response, notFound);
  });
});

describe("fetch: unknown hosts and liveness", () => {
  it("an unknown but valid host is 404 tenant_not_found, also when asked again (negative cache)", async () => {
    for (let i = 0; i < 3; i++) await expectProblem(await call(`http://nobody-here.localhost${path}`), notFound);
  });

  it("an unknown platform subdomain is 404 tenant_not_found", async () => {
    await expectProblem(await call(`http://nobody-here.tenantry.localhost${path}`), notFound);
  });

  it.each([
    "http://acme.localhost",
    "http://globex.localhost",
    "http://nobody-here.localhost",
    "http://localhost",
    "http://127.0.0.1",
    "http://[::1]",
    "http://a..b",
    "http://a_b.localhost",
    "http://evil.com",
  ])("GET /healthz on %s is 200 without a tenant", async (origin) => {
    const response = await call(`${origin}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });
});
