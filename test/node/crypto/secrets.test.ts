import { describe, expect, it } from "vitest";
import { base64urlDecode, base64urlEncode } from "../../../src/shared/crypto/base64url.ts";
import {
  decryptSecret,
  encryptSecret,
  generateKey,
  parseKeyRing,
  SecretConfigError,
  tenantAad,
} from "../../../src/shared/crypto/secrets.ts";

const CONNECTION = "postgresql://tenant_acme:s3cr%40t@ep-cool-1.eu-central-1.aws.neon.tech/acme?sslmode=require";
const ACME = tenantAad("ten_acme");
const GLOBEX = tenantAad("ten_globex");

/** Replaces one base64url character of a token part with a different one. */
function flipChar(text: string, index: number): string {
  const c = text[index];
  return text.slice(0, index) + (c === "A" ? "B" : "A") + text.slice(index + 1);
}

function tokenParts(token: string): [string, string, string, string] {
  const parts = token.split(".");
  expect(parts).toHaveLength(4);
  return parts as [string, string, string, string];
}

function expectSecretConfigError(secret: string, code: string): SecretConfigError {
  try {
    parseKeyRing(secret);
  } catch (error) {
    expect(error).toBeInstanceOf(SecretConfigError);
    expect((error as SecretConfigError).code).toBe(code);
    return error as SecretConfigError;
  }
  throw new Error("expected parseKeyRing to throw");
}

describe("base64url", () => {
  it("round-trips every length and byte value", () => {
    for (let length = 0; length < 70; length++) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      const text = base64urlEncode(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(base64urlDecode(text)).toEqual(bytes);
    }
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(base64urlDecode(base64urlEncode(all))).toEqual(all);
  });

  it("matches RFC 4648 §10 test vectors (unpadded, url alphabet)", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "Zg"],
      ["fo", "Zm8"],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg"],
      ["fooba", "Zm9vYmE"],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base64urlEncode(new TextEncoder().encode(plain))).toBe(encoded);
    }
    expect(base64urlEncode(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });

  it.each(["Zg==", "Zm9v\n", "Zm9v+", "Zm9v/", "Z", "Zm9vY", "Zh", "Zm9", "Zm 9v", "Zm9vé"])(
    "refuses %j (padding, foreign characters, impossible length, non-canonical bits)",
    (text) => {
      expect(base64urlDecode(text)).toBeUndefined();
    },
  );
});

describe("parseKeyRing", () => {
  it("makes the first entry current and keeps every kid", () => {
    const ring = parseKeyRing(`k2:${generateKey()},k1:${generateKey()}`);
    expect(ring.currentKid).toBe("k2");
    expect(ring.kids).toEqual(["k2", "k1"]);
  });

  it("ignores whitespace around entries (a piped-in secret ends with a newline)", () => {
    const ring = parseKeyRing(` k2:${generateKey()} ,\n k1:${generateKey()}\n`);
    expect(ring.kids).toEqual(["k2", "k1"]);
  });

  it("does not expose key material when serialised", () => {
    const key = generateKey();
    const ring = parseKeyRing(`k1:${key}`);
    expect(JSON.stringify(ring)).not.toContain(key);
    expect(Object.values(ring).flat().join()).not.toContain(key);
  });

  it.each([
    ["empty", "", "empty"],
    ["whitespace only", "  \n", "empty"],
    ["no colon", "k1", "invalid_entry"],
    ["trailing comma", `k1:${"A".repeat(43)},`, "invalid_entry"],
    ["empty kid", `:${"A".repeat(43)}`, "invalid_kid"],
    ["kid with a dot", `k.1:${"A".repeat(43)}`, "invalid_kid"],
    ["kid too long", `${"k".repeat(33)}:${"A".repeat(43)}`, "invalid_kid"],
    ["empty key", "k1:", "invalid_key"],
    ["16-byte key", `k1:${"A".repeat(22)}`, "invalid_key"],
    ["33-byte key", `k1:${"A".repeat(44)}`, "invalid_key"],
    ["padded key", `k1:${"A".repeat(43)}=`, "invalid_key"],
    ["standard base64 alphabet", `k1:${"+".repeat(42)}A`, "invalid_key"],
  ])("refuses %s", (_name, secret, code) => {
    expectSecretConfigError(secret, code);
  });

  it("refuses a duplicate kid", () => {
    expectSecretConfigError(`k1:${generateKey()},k1:${generateKey()}`, "duplicate_kid");
  });

  it("never puts key material in its error messages", () => {
    const good = generateKey();
    const secrets: [string, string][] = [
      [`k1:${good},k1:${good}`, good],
      [`k1:${good}x`, `${good}x`],
      [`k1:${good.slice(0, 40)}`, good.slice(0, 40)],
      [`k1:${good}=`, good],
      [`k1:${good},${good}`, good],
      [`bad kid!:${good}`, good],
      [`k1:${good.replaceAll("A", "+")}+`, good.replaceAll("A", "+")],
    ];
    for (const [secret, material] of secrets) {
      let error: unknown;
      try {
        parseKeyRing(secret);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(SecretConfigError);
      const { message, stack } = error as SecretConfigError;
      expect(message).not.toContain(material);
      expect(message).not.toContain(material.slice(0, 16));
      expect(stack ?? "").not.toContain(material.slice(0, 16));
    }
  });
});

describe("generateKey", () => {
  it("is 32 random bytes in base64url", () => {
    const a = generateKey();
    const b = generateKey();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(base64urlDecode(a)).toHaveLength(32);
    expect(a).not.toBe(b);
  });
});

describe("tenantAad", () => {
  it("is distinct per tenant", () => {
    expect(tenantAad("ten_acme")).toBe("tenantry:tenant-db:v1:ten_acme");
    expect(tenantAad("a")).not.toBe(tenantAad("b"));
  });
});

describe("encryptSecret / decryptSecret", () => {
  const ring = parseKeyRing(`k1:${generateKey()}`);

  it("round-trips", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    expect(await decryptSecret(ring, token, ACME)).toEqual({ ok: true, plaintext: CONNECTION });
  });

  it("round-trips empty and non-ASCII plaintext", async () => {
    for (const plaintext of ["", "pässwörd 🙂", "\uFEFFleading byte order mark", "x".repeat(10_000)]) {
      const token = await encryptSecret(ring, plaintext, ACME);
      expect(await decryptSecret(ring, token, ACME)).toEqual({ ok: true, plaintext });
    }
  });

  it("writes v1.<kid>.<12-byte iv>.<ciphertext and 16-byte tag>", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    const [version, kid, iv, sealed] = tokenParts(token);
    expect(version).toBe("v1");
    expect(kid).toBe("k1");
    expect(base64urlDecode(iv)).toHaveLength(12);
    expect(base64urlDecode(sealed)).toHaveLength(new TextEncoder().encode(CONNECTION).length + 16);
  });

  it("does not contain the plaintext, and differs every time (random IV)", async () => {
    const tokens = await Promise.all(Array.from({ length: 20 }, () => encryptSecret(ring, CONNECTION, ACME)));
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(new Set(tokens.map((token) => tokenParts(token)[2])).size).toBe(tokens.length);
    for (const token of tokens) {
      expect(token).not.toContain("postgresql");
      expect(token).not.toContain("s3cr");
      expect(token).not.toContain(base64urlEncode(new TextEncoder().encode(CONNECTION)).slice(0, 12));
    }
  });

  it("fails authentication when the ciphertext is moved to another tenant", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    expect(await decryptSecret(ring, token, GLOBEX)).toEqual({ ok: false, reason: "auth_failed" });
    expect(await decryptSecret(ring, token, "")).toEqual({ ok: false, reason: "auth_failed" });
  });

  it("fails authentication for a tampered ciphertext, tag or IV", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    const [version, kid, iv, sealed] = tokenParts(token);
    const tampered = [
      `${version}.${kid}.${iv}.${flipChar(sealed, 0)}`, // first ciphertext block
      `${version}.${kid}.${iv}.${flipChar(sealed, sealed.length - 3)}`, // tag
      `${version}.${kid}.${flipChar(iv, 0)}.${sealed}`,
      `${version}.${kid}.${iv}.${base64urlEncode((base64urlDecode(sealed) as Uint8Array).subarray(0, -1))}`, // truncated tag
      `${version}.${kid}.${iv}.${base64urlEncode(new Uint8Array([...(base64urlDecode(sealed) as Uint8Array), 0]))}`, // extended
    ];
    for (const token of tampered) {
      expect(await decryptSecret(ring, token, ACME)).toEqual({ ok: false, reason: "auth_failed" });
    }
  });

  it("fails authentication when the kid is changed to another key of the ring", async () => {
    const two = parseKeyRing(`k2:${generateKey()},k1:${generateKey()}`);
    const token = await encryptSecret(two, CONNECTION, ACME);
    const [version, , iv, sealed] = tokenParts(token);
    expect(await decryptSecret(two, `${version}.k1.${iv}.${sealed}`, ACME)).toEqual({
      ok: false,
      reason: "auth_failed",
    });
  });

  it("reports an unknown kid", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    const [version, , iv, sealed] = tokenParts(token);
    expect(await decryptSecret(ring, `${version}.k9.${iv}.${sealed}`, ACME)).toEqual({
      ok: false,
      reason: "unknown_key",
    });
    const other = parseKeyRing(`k9:${generateKey()}`);
    expect(await decryptSecret(other, token, ACME)).toEqual({ ok: false, reason: "unknown_key" });
  });

  it("fails authentication under a different key with the same kid", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    const impostor = parseKeyRing(`k1:${generateKey()}`);
    expect(await decryptSecret(impostor, token, ACME)).toEqual({ ok: false, reason: "auth_failed" });
  });

  it("reports malformed tokens without throwing", async () => {
    const token = await encryptSecret(ring, CONNECTION, ACME);
    const [version, kid, iv, sealed] = tokenParts(token);
    const malformed = [
      "",
      "not a token",
      CONNECTION,
      `${version}.${kid}.${iv}`,
      `${token}.extra`,
      `v2.${kid}.${iv}.${sealed}`,
      `V1.${kid}.${iv}.${sealed}`,
      `.${kid}.${iv}.${sealed}`,
      `${version}..${iv}.${sealed}`,
      `${version}.k!.${iv}.${sealed}`,
      `${version}.${"k".repeat(33)}.${iv}.${sealed}`,
      `${version}.${kid}.${iv}=.${sealed}`,
      `${version}.${kid}.${iv.slice(1)}.${sealed}`,
      `${version}.${kid}.${iv}AAAA.${sealed}`,
      `${version}.${kid}.${iv}.${sealed}=`,
      `${version}.${kid}.${iv}.${sealed.replaceAll("-", "+")}+`,
      `${version}.${kid}.${iv}.`,
      `${version}.${kid}.${iv}.${sealed.slice(0, 20)}`, // shorter than a tag
    ];
    for (const bad of malformed) {
      expect(await decryptSecret(ring, bad, ACME), bad).toEqual({ ok: false, reason: "malformed" });
    }
  });

  it("decrypts after rotation: old ciphertexts with the old key, new ones with the new key", async () => {
    const oldKey = generateKey();
    const before = parseKeyRing(`2024:${oldKey}`);
    const oldToken = await encryptSecret(before, CONNECTION, ACME);

    const after = parseKeyRing(`2025:${generateKey()},2024:${oldKey}`);
    expect(await decryptSecret(after, oldToken, ACME)).toEqual({ ok: true, plaintext: CONNECTION });

    const newToken = await encryptSecret(after, CONNECTION, ACME);
    expect(tokenParts(newToken)[1]).toBe("2025");
    expect(await decryptSecret(after, newToken, ACME)).toEqual({ ok: true, plaintext: CONNECTION });
    // The old ring cannot read what the new current key wrote.
    expect(await decryptSecret(before, newToken, ACME)).toEqual({ ok: false, reason: "unknown_key" });
  });

  it("uses the key ring many times concurrently (one import, shared)", async () => {
    const fresh = parseKeyRing(`k1:${generateKey()}`);
    const tokens = await Promise.all(
      Array.from({ length: 50 }, (_, i) => encryptSecret(fresh, `${CONNECTION}#${i}`, tenantAad(`t${i}`))),
    );
    const results = await Promise.all(tokens.map((token, i) => decryptSecret(fresh, token, tenantAad(`t${i}`))));
    results.forEach((result, i) => {
      expect(result).toEqual({ ok: true, plaintext: `${CONNECTION}#${i}` });
    });
  });

  it("refuses to encrypt with a ring that did not come from parseKeyRing", async () => {
    await expect(encryptSecret({ currentKid: "k1", kids: ["k1"] }, CONNECTION, ACME)).rejects.toThrow(TypeError);
  });
});
