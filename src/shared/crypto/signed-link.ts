/**
 * Signed export download links: HMAC-SHA256 (RFC 2104, through WebCrypto) over the tenant, the
 * export and an expiry, hex-encoded into the link's `sig`. The control plane signs a link when an
 * operator asks for one; the Worker verifies it on the tenant's own host. Both sides need the same
 * message and the same check, so they live here, below both.
 *
 * The signature covers the tenant id, so a link works on its tenant's host only; the expiry is
 * checked after the signature, so a tampered expiry reads as a bad signature, not as expired.
 */
import { constantTimeEqual } from "./equal.ts";

const encoder = new TextEncoder();

async function hmac(secret: string, message: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** What the signature covers: tenant, export and expiry, so a link works for one tenant's host only. */
const signedMessage = (tenantId: string, exportId: string, expires: number) =>
  `tenantry-export:v1:${tenantId}:${exportId}:${expires}`;

/** The link's signature (64 hex digits); `expires` is in seconds since the epoch. */
export async function signExportLink(
  secret: string,
  tenantId: string,
  exportId: string,
  expires: number,
): Promise<string> {
  return hex(await hmac(secret, signedMessage(tenantId, exportId, expires)));
}

export type LinkCheck = { ok: true } | { ok: false; reason: "malformed" | "expired" | "bad_signature" };

/** Constant-time check (shared/crypto/equal.ts). */
export async function verifyExportLink(
  secret: string,
  tenantId: string,
  exportId: string,
  expires: string | undefined,
  signature: string | undefined,
  now = Date.now(),
): Promise<LinkCheck> {
  if (
    !expires ||
    !signature ||
    !/^\d{1,13}$/.test(expires) ||
    !/^[0-9a-f]{64}$/.test(signature) ||
    !/^exp_[0-9a-f]{16}$/.test(exportId)
  ) {
    return { ok: false, reason: "malformed" };
  }
  const expected = await hmac(secret, signedMessage(tenantId, exportId, Number(expires)));
  const given = new Uint8Array(signature.match(/../g)?.map((h) => Number.parseInt(h, 16)) ?? []);
  if (!constantTimeEqual(expected, given)) return { ok: false, reason: "bad_signature" };
  if (Number(expires) * 1000 < now) return { ok: false, reason: "expired" };
  return { ok: true };
}
