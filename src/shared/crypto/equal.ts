/**
 * Constant-time comparison of two byte strings, for MACs and signatures: how long it takes must not
 * say how many leading bytes of a guess were right, or an attacker can forge a MAC byte by byte
 * (the classic timing attack on early-exit comparison). workerd has
 * `crypto.subtle.timingSafeEqual`; other runtimes (Node, tests) get this fallback, which reads
 * every byte and folds the differences with OR, never branching on the data. Lengths are not
 * secret here (a digest's length is public), so unequal lengths return early.
 */

type Subtle = typeof crypto.subtle & {
  timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean;
};

/** The fallback: every byte of both arrays is read, whatever the data. */
export function constantTimeEqualFallback(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const subtle = crypto.subtle as Subtle;
  // workerd's timingSafeEqual throws on unequal lengths.
  if (subtle.timingSafeEqual && a.length === b.length) return subtle.timingSafeEqual(a, b);
  return constantTimeEqualFallback(a, b);
}
