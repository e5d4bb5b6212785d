/**
 * Tenant connection strings at rest in KV: AES-256-GCM through WebCrypto (NIST SP 800-38D).
 *
 * Token: `v1.<kid>.<base64url iv>.<base64url ciphertext‖tag>`. The key id travels in the clear so
 * keys can rotate: the first key of the ring encrypts, every key of the ring decrypts. The
 * additional authenticated data is the token header (`v1.<kid>.`) followed by the caller's AAD,
 * which is the tenant id (`tenantAad`): a ciphertext copied into another tenant's record, or given
 * another key id, fails authentication instead of decrypting.
 *
 * IVs are 96 random bits per message (SP 800-38D §8.2.2). With random IVs one key should stay
 * well under 2^32 encryptions (§8.3); we encrypt once per tenant provisioning or rotation, so a
 * key never comes close.
 */
import { base64urlDecode, base64urlEncode } from "./base64url.ts";

const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * A parsed key ring. Only ids are visible: key material lives in a module-private WeakMap, so a
 * ring that ends up in a log line or JSON.stringify shows no secret.
 */
export interface KeyRing {
  /** The key id new ciphertexts are written with. */
  readonly currentKid: string;
  /** Every key id that can decrypt, current first. */
  readonly kids: readonly string[];
}

export type DecryptResult =
  | { readonly ok: true; readonly plaintext: string }
  | { readonly ok: false; readonly reason: "malformed" | "unknown_key" | "auth_failed" };

export type SecretConfigErrorCode = "empty" | "invalid_entry" | "invalid_kid" | "duplicate_kid" | "invalid_key";

/**
 * The key-ring secret is unusable. Messages name the entry by position (and the key id, which is
 * not secret), never the key material, because this error is logged at startup.
 */
export class SecretConfigError extends Error {
  override readonly name = "SecretConfigError";
  constructor(
    readonly code: SecretConfigErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Named through the API so the module needs neither the DOM lib nor Workers' global types. */
type AesKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

interface KeySlot {
  raw: Uint8Array<ArrayBuffer> | undefined;
  /** Imported once per ring and reused by every request in the isolate. */
  key: Promise<AesKey> | undefined;
}

const slotsByRing = new WeakMap<KeyRing, Map<string, KeySlot>>();

const encoder = new TextEncoder();
// fatal: an authenticated plaintext that is not UTF-8 was not written by us; say so, do not guess.
// ignoreBOM: keep a leading U+FEFF, so decrypt(encrypt(s)) is s for every string.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses the Worker secret `kid:base64url(32 bytes)[,kid:key…]`; the first entry encrypts.
 * Whitespace around entries is ignored (a secret piped in with a trailing newline is common);
 * anything else malformed throws SecretConfigError.
 */
export function parseKeyRing(secret: string): KeyRing {
  const entries = secret.split(",").map((entry) => entry.trim());
  if (entries.length === 1 && entries[0] === "") throw new SecretConfigError("empty", "key ring secret is empty");
  const slots = new Map<string, KeySlot>();
  entries.forEach((entry, index) => {
    const position = `key ring entry ${index + 1}`;
    const colon = entry.indexOf(":");
    if (colon === -1) throw new SecretConfigError("invalid_entry", `${position} is not of the form kid:key`);
    const kid = entry.slice(0, colon);
    if (!KID_PATTERN.test(kid)) {
      throw new SecretConfigError("invalid_kid", `${position} has a key id that is not 1-32 of [A-Za-z0-9_-]`);
    }
    if (slots.has(kid)) throw new SecretConfigError("duplicate_kid", `${position} repeats key id ${kid}`);
    const raw = base64urlDecode(entry.slice(colon + 1));
    if (raw === undefined || raw.length !== KEY_BYTES) {
      throw new SecretConfigError(
        "invalid_key",
        `${position} (${kid}) is not ${KEY_BYTES} bytes of unpadded base64url`,
      );
    }
    slots.set(kid, { raw, key: undefined });
  });
  const kids = Object.freeze([...slots.keys()]);
  const ring: KeyRing = Object.freeze({ currentKid: kids[0] as string, kids });
  slotsByRing.set(ring, slots);
  return ring;
}

/** A fresh key for the ring secret: 32 random bytes, base64url. */
export function generateKey(): string {
  return base64urlEncode(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** The AAD binding a connection-string ciphertext to one tenant (and to this use of the key). */
export function tenantAad(tenantId: string): string {
  return `tenantry:tenant-db:v1:${tenantId}`;
}

export async function encryptSecret(ring: KeyRing, plaintext: string, aad: string): Promise<string> {
  const key = importedKey(ring, ring.currentKid);
  if (key === undefined) throw new TypeError("encryptSecret needs a key ring from parseKeyRing");
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(ring.currentKid, aad), tagLength: TAG_BYTES * 8 },
    await key,
    encoder.encode(plaintext),
  );
  return `${keyHeader(ring.currentKid)}.${base64urlEncode(iv)}.${base64urlEncode(new Uint8Array(sealed))}`;
}

/** The header a ciphertext under key `kid` starts with, before its first dot-separated value: `v1.<kid>`. */
export function keyHeader(kid: string): string {
  return `${VERSION}.${kid}`;
}

/** The key id a ciphertext names in its header, or undefined when it is not one of ours. */
export function keyIdOf(token: string): string | undefined {
  const [version, kid] = token.split(".", 2);
  return version === VERSION && kid !== undefined && KID_PATTERN.test(kid) ? kid : undefined;
}

/** Never throws on bad input: every failure is a reason, and none of them says more than that. */
export async function decryptSecret(ring: KeyRing, token: string, aad: string): Promise<DecryptResult> {
  const parts = token.split(".");
  if (parts.length !== 4) return { ok: false, reason: "malformed" };
  const [version, kid, ivText, sealedText] = parts as [string, string, string, string];
  if (version !== VERSION || !KID_PATTERN.test(kid)) return { ok: false, reason: "malformed" };
  const iv = base64urlDecode(ivText);
  const sealed = base64urlDecode(sealedText);
  if (iv === undefined || iv.length !== IV_BYTES || sealed === undefined || sealed.length < TAG_BYTES) {
    return { ok: false, reason: "malformed" };
  }
  const key = importedKey(ring, kid);
  if (key === undefined) return { ok: false, reason: "unknown_key" };
  let opened: ArrayBuffer;
  try {
    opened = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: additionalData(kid, aad), tagLength: TAG_BYTES * 8 },
      await key,
      sealed,
    );
  } catch {
    return { ok: false, reason: "auth_failed" };
  }
  try {
    return { ok: true, plaintext: decoder.decode(opened) };
  } catch {
    return { ok: false, reason: "malformed" };
  }
}

/** `v1.<kid>.` + aad: a kid cannot contain ".", so the split between header and aad is unambiguous. */
function additionalData(kid: string, aad: string): Uint8Array {
  return encoder.encode(`${keyHeader(kid)}.${aad}`);
}

/** The ring's CryptoKey for `kid`, imported on first use; `undefined` when the ring has no such key. */
function importedKey(ring: KeyRing, kid: string): Promise<AesKey> | undefined {
  const slot = slotsByRing.get(ring)?.get(kid);
  if (slot === undefined) return undefined;
  if (slot.key === undefined && slot.raw !== undefined) {
    // Non-extractable: once imported, the bytes cannot be read back out of the CryptoKey.
    slot.key = crypto.subtle.importKey("raw", slot.raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
    // importKey copies the bytes; drop our reference so the raw key is not kept alive for nothing.
    slot.raw = undefined;
  }
  return slot.key;
}
