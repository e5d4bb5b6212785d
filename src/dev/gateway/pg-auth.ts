/**
 * The client side of Postgres password authentication, for the gateway's own connections
 * (pg-wire.ts): cleartext, MD5 and SCRAM-SHA-256 without channel binding (RFC 5802 / 7677, as
 * Postgres implements it; the gateway talks to Postgres in cleartext, so there is no channel to
 * bind). Pure functions over node:crypto; the message exchange itself is in pg-wire.ts.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/** `md5` + md5(md5(password + user) + salt), the answer to AuthenticationMD5Password. */
export function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash("md5")
    .update(password + user)
    .digest("hex");
  return `md5${createHash("md5").update(inner).update(salt).digest("hex")}`;
}

export interface ScramSession {
  readonly clientNonce: string;
  /** client-first-message, sent in SASLInitialResponse. */
  readonly clientFirst: string;
}

const GS2_HEADER = "n,,";

/** Starts a SCRAM-SHA-256 exchange; the server must offer that mechanism. */
export function scramStart(mechanisms: readonly string[]): ScramSession {
  if (!mechanisms.includes("SCRAM-SHA-256")) {
    throw new Error(`Postgres offers SASL mechanisms ${mechanisms.join(", ")}; the gateway speaks SCRAM-SHA-256`);
  }
  const clientNonce = randomBytes(18).toString("base64");
  // The user is sent in the startup message; Postgres ignores the one here.
  return { clientNonce, clientFirst: `${GS2_HEADER}n=*,r=${clientNonce}` };
}

function attributes(message: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of message.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) found.set(part.slice(0, at), part.slice(at + 1));
  }
  return found;
}

const hmac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest();

export interface ScramProof {
  /** client-final-message, sent in SASLResponse. */
  readonly clientFinal: string;
  /** What the server's final message must carry (`v=`), base64. */
  readonly serverSignature: string;
}

/** Answers the server-first-message with the client proof. */
export function scramContinue(session: ScramSession, password: string, serverFirst: string): ScramProof {
  const server = attributes(serverFirst);
  const nonce = server.get("r") ?? "";
  const salt = server.get("s");
  const iterations = Number(server.get("i"));
  if (!nonce.startsWith(session.clientNonce) || nonce.length === session.clientNonce.length) {
    throw new Error("SCRAM: the server's nonce does not extend the client's");
  }
  if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) {
    throw new Error("SCRAM: the server's first message has no usable salt or iteration count");
  }
  const salted = pbkdf2Sync(password.normalize("NFKC"), Buffer.from(salt, "base64"), iterations, 32, "sha256");
  const clientKey = hmac(salted, "Client Key");
  const storedKey = createHash("sha256").update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(GS2_HEADER).toString("base64")},r=${nonce}`;
  const authMessage = `${session.clientFirst.slice(GS2_HEADER.length)},${serverFirst},${withoutProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let index = 0; index < proof.length; index += 1) {
    proof[index] = (clientKey[index] ?? 0) ^ (signature[index] ?? 0);
  }
  const serverSignature = hmac(hmac(salted, "Server Key"), authMessage).toString("base64");
  return { clientFinal: `${withoutProof},p=${proof.toString("base64")}`, serverSignature };
}

/** Checks the server-final-message: the server proves it knew the password too. */
export function scramFinish(proof: ScramProof, serverFinal: string): void {
  const verifier = attributes(serverFinal).get("v") ?? "";
  const expected = Buffer.from(proof.serverSignature);
  const actual = Buffer.from(verifier);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new Error("SCRAM: the server's signature does not match");
  }
}
