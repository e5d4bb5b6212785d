/**
 * Recognising the first message of a Postgres session, so that a WebSocket client sending
 * something else is refused by the gateway with a clear reason. Postgres itself closes such a
 * connection silently ("invalid length of startup packet" goes to the server log only), which a
 * client would see as an unexplained hang-up.
 *
 * Every session opens with a length-prefixed packet whose second Int32 is a protocol code:
 * StartupMessage (major version 3), SSLRequest, GSSENCRequest or CancelRequest. See the Postgres
 * manual, "Message Formats", and MAX_STARTUP_PACKET_LENGTH in src/include/libpq/pqcomm.h.
 */

/** Bytes needed before a decision can be made: length and code. */
export const STARTUP_HEADER_BYTES = 8;

const MAX_STARTUP_PACKET_LENGTH = 10_000;
const SPECIAL_CODES = new Set([
  80877102, // CancelRequest
  80877103, // SSLRequest
  80877104, // GSSENCRequest
]);

export type StartupVerdict = "ok" | "more" | { readonly problem: string };

/** Judges the first bytes a client sent: enough to accept, too few to tell, or not Postgres. */
export function checkStartupPacket(bytes: Uint8Array): StartupVerdict {
  if (bytes.length < STARTUP_HEADER_BYTES) return "more";
  const view = new DataView(bytes.buffer, bytes.byteOffset, STARTUP_HEADER_BYTES);
  const length = view.getInt32(0);
  const code = view.getInt32(4);
  if (length < STARTUP_HEADER_BYTES || length > MAX_STARTUP_PACKET_LENGTH) {
    return { problem: `not a Postgres startup packet (length ${length})` };
  }
  if (code >>> 16 === 3 || SPECIAL_CODES.has(code)) return "ok";
  return { problem: `not a Postgres startup packet (protocol code ${code})` };
}
