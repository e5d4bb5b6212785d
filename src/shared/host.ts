/**
 * Request host → the canonical ASCII host name the tenant lookup is keyed by.
 *
 * The input is `new URL(request.url).hostname`, which the WHATWG URL parser has usually lowercased
 * and converted to punycode already, but this code is the trust boundary for the tenant key, so it
 * treats its input as raw: it accepts only what a real DNS host name can be (RFC 1123 §2.1 LDH
 * labels, RFC 1035 §2.3.4 lengths, IDNA A-labels per RFC 5890/5891) and says why anything else
 * was refused. Nothing is silently trimmed; the only rewrites are lowercasing, dropping one
 * trailing dot and a `:port`, and IDN → punycode, each of which names the same host.
 *
 * Decisions worth knowing:
 * - At least two labels are required, so bare `localhost` (or any single-label name) is refused;
 *   dev tenants live on `<slug>.localhost`.
 * - Any name whose last label is numeric (`1.2.3.4`, `127.1`, `0x7f.0.0.1`, `2130706433`,
 *   `example.123`) is an IP literal: the WHATWG URL parser would read it as IPv4 ("ends in a
 *   number"), and no TLD is all-numeric (RFC 3696 §2).
 * - IDNs follow the URL standard's UTS #46 processing, which is what browsers send: `bücher.example`
 *   becomes `xn--bcher-kva.example`, and an emoji label such as `🙂.example` is accepted as
 *   `xn--938h.example` (not a registrable IDNA2008 name, but a well-formed A-label that simply
 *   will not match a tenant). A-labels are then also held to RFC 5891 §4.2.3.1's hyphen rules,
 *   which UTS #46 as the URL standard applies it (CheckHyphens=false) does not check.
 */

export type HostRejection =
  | "empty"
  | "name_too_long"
  | "ip_literal"
  | "invalid_port"
  | "invalid_character"
  | "empty_label"
  | "label_too_long"
  | "invalid_label"
  | "invalid_idn"
  | "single_label";

export type HostResult = { ok: true; host: string } | { ok: false; reason: HostRejection };

/** RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters of dotted text. */
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
/**
 * Bound on the raw input before any IDNA work. Unicode input can shrink when mapped (soft hyphens
 * and variation selectors map to nothing), so the real length check runs on the ASCII result; this
 * one only caps the work done for hostile input.
 */
const MAX_INPUT_LENGTH = 1024;

const reject = (reason: HostRejection): HostResult => ({ ok: false, reason });

export function normalizeHost(input: string): HostResult {
  if (input.length === 0) return reject("empty");
  if (input.length > MAX_INPUT_LENGTH) return reject("name_too_long");
  // RFC 3986 §3.2.2: a bracketed host is an IP-literal (IPv6 or IPvFuture), with or without a port.
  if (input.startsWith("[")) return reject("ip_literal");

  let host = input;
  const colon = host.indexOf(":");
  if (colon !== -1) {
    // host:port has one colon; more than one is an unbracketed IPv6 address such as `::1`.
    if (host.includes(":", colon + 1)) return reject("ip_literal");
    if (!isPort(host.slice(colon + 1))) return reject("invalid_port");
    host = host.slice(0, colon);
  }

  // Refuse ASCII outside LDH and dots before the URL parser sees the name: it would percent-decode
  // (`a%2eb` → `a.b`), drop tabs and newlines, and cut at `/`, `\`, `?`, `#` or `@`, each of which
  // turns one name into another. Non-ASCII is left for IDNA processing below.
  let nonAscii = false;
  for (let i = 0; i < host.length; i++) {
    const code = host.charCodeAt(i);
    if (code >= 0x80) nonAscii = true;
    else if (!isLdhOrDot(code)) return reject("invalid_character");
  }
  host = host.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());

  // Before the URL parser, which would rewrite `127.1` to `127.0.0.1` or throw on `1.2.3.256`.
  if (isNumericLabel(lastLabel(host.endsWith(".") ? host.slice(0, -1) : host))) return reject("ip_literal");

  if (nonAscii || host.includes("xn--")) {
    // The URL parser's host parsing is the standard's domain-to-ASCII (UTS #46 mapping, NFC,
    // punycode, A-label validation): the same conversion the browser applied to the request URL.
    try {
      host = new URL(`http://${host}/`).hostname;
    } catch {
      return reject("invalid_idn");
    }
  }

  // One trailing dot is the fully qualified spelling of the same name (RFC 1034 §3.1).
  if (host.endsWith(".")) host = host.slice(0, -1);
  return checkName(host);
}

/** Structural checks on a lowercased ASCII name without its trailing dot. */
function checkName(name: string): HostResult {
  if (name === "") return reject("empty");
  // Only reachable through IDNA mapping (fullwidth punctuation and the like).
  if (!/^[a-z0-9.-]+$/.test(name)) return reject("invalid_character");
  if (name.length > MAX_NAME_LENGTH) return reject("name_too_long");
  const labels = name.split(".");
  if (labels.includes("")) return reject("empty_label");
  // Again after IDNA: fullwidth digits map to ASCII ones.
  if (isNumericLabel(lastLabel(name))) return reject("ip_literal");
  for (const label of labels) {
    if (label.length > MAX_LABEL_LENGTH) return reject("label_too_long");
    // RFC 1123 §2.1 / RFC 952: letters, digits and hyphens, not starting or ending with a hyphen.
    if (label.startsWith("-") || label.endsWith("-")) return reject("invalid_label");
    if (label.startsWith("xn--") && !isValidALabel(label)) return reject("invalid_idn");
  }
  if (labels.length < 2) return reject("single_label");
  return { ok: true, host: name };
}

/**
 * How `host` (a normalizeHost result) relates to the platform domain (configuration: ASCII, any
 * case, optional trailing dot): `<slug>.<platformDomain>` with a valid slug; one label below the
 * platform domain that is not a valid slug (slugs are validated with isValidSlug when created, so
 * it cannot name a tenant and is not worth a KV read); or anything else (custom domains, deeper
 * names below the platform domain), which is looked up by host.
 */
export type PlatformHost = { kind: "slug"; slug: string } | { kind: "invalid_slug" } | { kind: "other" };

export function classifyPlatformHost(host: string, platformDomain: string): PlatformHost {
  let domain = platformDomain.toLowerCase();
  if (domain.endsWith(".")) domain = domain.slice(0, -1);
  if (domain === "") return { kind: "other" };
  const suffix = `.${domain}`;
  if (!host.endsWith(suffix)) return { kind: "other" };
  const label = host.slice(0, -suffix.length);
  if (label.includes(".")) return { kind: "other" };
  return isValidSlug(label) ? { kind: "slug", slug: label } : { kind: "invalid_slug" };
}

/** The tenant slug when `host` is exactly `<slug>.<platformDomain>` with a valid slug, else `undefined`. */
export function platformSlug(host: string, platformDomain: string): string | undefined {
  const match = classifyPlatformHost(host, platformDomain);
  return match.kind === "slug" ? match.slug : undefined;
}

/**
 * Tenant slugs: 3-32 characters, a lowercase letter first, letters, digits and single hyphens, no
 * hyphen last. Always one DNS label, never an A-label (`xn--` needs "--"), never numeric.
 */
export function isValidSlug(s: string): boolean {
  return /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/.test(s) && !s.includes("--");
}

function isPort(text: string): boolean {
  return /^[0-9]{1,5}$/.test(text) && Number(text) <= 65535;
}

function isLdhOrDot(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2d || // -
    code === 0x2e // .
  );
}

function lastLabel(name: string): string {
  return name.slice(name.lastIndexOf(".") + 1);
}

/**
 * The URL standard's "ends in a number" test: decimal digits, or `0x` followed by hex digits
 * (possibly none). Octal (`0177`) is all digits already.
 */
function isNumericLabel(label: string): boolean {
  return /^(?:[0-9]+|0x[0-9a-f]*)$/.test(label);
}

/**
 * RFC 5891 §4.2.3.1 on the U-label behind an A-label: it must decode (RFC 3492), contain something
 * beyond ASCII, and not start or end with "-" or have "--" in positions 3 and 4. The URL parser
 * has already checked the rest (valid code points, NFC, UTS #46 status).
 */
function isValidALabel(label: string): boolean {
  const decoded = decodePunycode(label.slice(4));
  if (decoded === undefined || !decoded.some((code) => code >= 0x80)) return false;
  const hyphen = 0x2d;
  if (decoded[0] === hyphen || decoded[decoded.length - 1] === hyphen) return false;
  return !(decoded[2] === hyphen && decoded[3] === hyphen);
}

// RFC 3492 §5 parameters.
const BASE = 36;
const T_MIN = 1;
const T_MAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
/** Far above any valid delta for a 63-character label, far below where doubles lose integers. */
const MAX_DELTA = 0x7fffffff;

/** RFC 3492 §6.2 decoding of lowercase punycode into code points; `undefined` when invalid. */
function decodePunycode(input: string): number[] | undefined {
  const output: number[] = [];
  const delimiter = input.lastIndexOf("-");
  // Basic code points come first, up to the last delimiter; the caller guarantees they are LDH.
  for (let j = 0; j < delimiter; j++) output.push(input.charCodeAt(j));
  let position = delimiter > 0 ? delimiter + 1 : 0;
  let n = INITIAL_N;
  let i = 0;
  let bias = INITIAL_BIAS;
  while (position < input.length) {
    const oldI = i;
    let weight = 1;
    for (let k = BASE; ; k += BASE) {
      if (position >= input.length) return undefined;
      const digit = punycodeDigit(input.charCodeAt(position++));
      if (digit < 0) return undefined;
      i += digit * weight;
      if (i > MAX_DELTA) return undefined;
      const threshold = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
      if (digit < threshold) break;
      weight *= BASE - threshold;
      if (weight > MAX_DELTA) return undefined;
    }
    const length = output.length + 1;
    bias = adapt(i - oldI, length, oldI === 0);
    n += Math.floor(i / length);
    i %= length;
    // A code point, and not a surrogate.
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return undefined;
    output.splice(i, 0, n);
    i++;
  }
  return output;
}

function punycodeDigit(code: number): number {
  if (code >= 0x61 && code <= 0x7a) return code - 0x61; // a-z → 0-25
  if (code >= 0x30 && code <= 0x39) return code - 0x30 + 26; // 0-9 → 26-35
  return -1;
}

/** RFC 3492 §6.1 bias adaptation. */
function adapt(delta: number, points: number, first: boolean): number {
  let d = first ? Math.floor(delta / DAMP) : Math.floor(delta / 2);
  d += Math.floor(d / points);
  let k = 0;
  while (d > ((BASE - T_MIN) * T_MAX) >> 1) {
    d = Math.floor(d / (BASE - T_MIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - T_MIN + 1) * d) / (d + SKEW));
}
