/**
 * The parsed `Neon-Connection-String` of recent requests. A client sends the same string on every
 * request (one per tenant database), and parsing it (two URL parses and a parameter filter) was a
 * measurable share of a `SELECT 1` round trip's CPU in the gateway. Only successful parses are kept
 * (a bad header is refused afresh each time), in memory only, and at most `size` of them: the
 * oldest is dropped first, so a stream of distinct strings cannot grow the process.
 */
import { type Headers, parseConnectionString, type Target } from "./protocol.ts";

export class TargetCache {
  readonly #targets = new Map<string, Target>();

  constructor(readonly size = 256) {}

  get count(): number {
    return this.#targets.size;
  }

  /** Same answer (or the same GatewayError) as `parseConnectionString(headers)`. */
  parse(headers: Headers): Target {
    const raw = headers["neon-connection-string"];
    if (typeof raw !== "string") return parseConnectionString(headers);
    const known = this.#targets.get(raw);
    if (known) return known;
    const target = parseConnectionString(headers);
    if (this.#targets.size >= this.size) {
      const oldest = this.#targets.keys().next();
      if (!oldest.done) this.#targets.delete(oldest.value);
    }
    this.#targets.set(raw, target);
    return target;
  }
}
