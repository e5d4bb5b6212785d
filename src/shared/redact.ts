/**
 * Secret redaction, the one place it is done: connection strings, bearer tokens and JWTs are
 * replaced before a string reaches a log line (worker/http/redact.ts), a stored failure reason or
 * an API answer (control: onboarding, fleet runs, exports, the Neon client). It runs over
 * client-chosen text (the path of a request for an unknown host, header values), so its cost must stay linear in the input, whatever the input: a
 * backtracking pattern such as `\beyJ[A-Za-z0-9_-]+\.…` restarts at every `eyJ` of a long run
 * and rescans it to the end, which made a 28 KB path of `-eyJ` cost 141 ms of Worker CPU (issue 16).
 * Here every regex either starts at a rare literal and stops at a character outside its class, or
 * matches maximal runs, and the JWT search walks each run once (see findJwt).
 * The logger also bounds its input (MAX_LOGGED_CHARS), so a line stays small.
 */

/**
 * RFC 3986 schemes are case-insensitive: `POSTGRESQL://` is the same secret. The match runs to the
 * next space or `"` (never valid in a URI unencoded); `'` may be in a password (a sub-delim).
 */
const CONNECTION_STRING = /\b(postgres(?:ql)?):\/\/[^\s"]+/gi;
/** RFC 7235 §2.1: the auth scheme is case-insensitive (`bearer`, `BEARER`). */
const BEARER = /\bBearer\s+[A-Za-z0-9._~+/=-]+/gi;
/** Maximal runs of base64url characters and dots: each character is visited by one match only. */
const DOTTED_RUN = /[A-Za-z0-9_.-]+/g;

const isWordChar = (code: number) =>
  (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f;

/**
 * The first JWT (compact JWS: `eyJ…` header, then two more non-empty base64url segments) in a
 * maximal dotted run at or after `from`, as [start, end); the same matches as the regex
 * `\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`. Linear: every scan moves forward, and
 * candidates in one segment share that segment's end and the two segments after it, so once one
 * fails the search jumps past its segment (each segment is read at most three times).
 */
function findJwt(run: string, from: number): [number, number] | undefined {
  let i = run.indexOf("eyJ", from);
  while (i !== -1) {
    // Within a run every character is base64url or `.`; `-` and `.` are the non-word ones (`\b`).
    if (i !== 0 && isWordChar(run.charCodeAt(i - 1))) {
      i = run.indexOf("eyJ", i + 1);
      continue;
    }
    const first = segmentEnd(run, i);
    if (first - i > 3 && first < run.length) {
      const second = segmentEnd(run, first + 1);
      const third = second > first + 1 && second < run.length ? segmentEnd(run, second + 1) : -1;
      if (third > second + 1) return [i, third];
    }
    if (first >= run.length) return undefined;
    i = run.indexOf("eyJ", first + 1);
  }
  return undefined;
}

/** The end of the dot-free segment starting at `start`. */
function segmentEnd(run: string, start: number): number {
  const dot = run.indexOf(".", start);
  return dot === -1 ? run.length : dot;
}

function redactJwts(run: string): string {
  let out = "";
  let position = 0;
  for (let found = findJwt(run, 0); found; found = findJwt(run, position)) {
    out += `${run.slice(position, found[0])}[redacted-jwt]`;
    position = found[1];
  }
  return position === 0 ? run : out + run.slice(position);
}

/**
 * Removes secrets from a string that may have come from a driver or a client. Linear time. A
 * connection string keeps its scheme (`postgresql://[redacted]`), whatever its case.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(CONNECTION_STRING, "$1://[redacted]")
    .replace(BEARER, "Bearer [redacted]")
    .replace(DOTTED_RUN, (run) => (run.includes("eyJ") ? redactJwts(run) : run));
}
