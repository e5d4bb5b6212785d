/**
 * Signed export links without a Worker: a signature verifies for its own tenant, export and expiry
 * only; a tampered expiry is a bad signature, not an expired link; malformed input is refused
 * before any HMAC. The download route's behaviour is covered in test/worker/export-lifecycle.test.ts.
 */
import { describe, expect, it } from "vitest";
import { signExportLink, verifyExportLink } from "../../../src/shared/crypto/signed-link.ts";

const SECRET = "test-signing-key";
const TENANT = "ten_1";
const EXPORT = "exp_0123456789abcdef";
const NOW = Date.UTC(2026, 0, 1);
const EXPIRES = NOW / 1000 + 900;

describe("signed export links", () => {
  it("verifies a link for its own tenant, export and expiry only", async () => {
    const sig = await signExportLink(SECRET, TENANT, EXPORT, EXPIRES);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    const check = (tenant: string, id: string, expires: number, secret = SECRET) =>
      verifyExportLink(secret, tenant, id, String(expires), sig, NOW);
    expect(await check(TENANT, EXPORT, EXPIRES)).toEqual({ ok: true });
    expect(await check("ten_2", EXPORT, EXPIRES)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await check(TENANT, "exp_0123456789abcdee", EXPIRES)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await check(TENANT, EXPORT, EXPIRES + 1)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await check(TENANT, EXPORT, EXPIRES, "other-key")).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("refuses an expired link", async () => {
    const expires = NOW / 1000 - 1;
    const sig = await signExportLink(SECRET, TENANT, EXPORT, expires);
    expect(await verifyExportLink(SECRET, TENANT, EXPORT, String(expires), sig, NOW)).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  it("refuses malformed input", async () => {
    const sig = await signExportLink(SECRET, TENANT, EXPORT, EXPIRES);
    const malformed = { ok: false, reason: "malformed" };
    expect(await verifyExportLink(SECRET, TENANT, EXPORT, undefined, sig, NOW)).toEqual(malformed);
    expect(await verifyExportLink(SECRET, TENANT, EXPORT, String(EXPIRES), undefined, NOW)).toEqual(malformed);
    expect(await verifyExportLink(SECRET, TENANT, EXPORT, "12x", sig, NOW)).toEqual(malformed);
    expect(await verifyExportLink(SECRET, TENANT, EXPORT, String(EXPIRES), sig.toUpperCase(), NOW)).toEqual(malformed);
    expect(await verifyExportLink(SECRET, TENANT, "../etc", String(EXPIRES), sig, NOW)).toEqual(malformed);
  });
});
