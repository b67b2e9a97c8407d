/**
 * Switches that turn one of Baton's safety mechanisms off, so tests and the chaos harness
 * can show that they catch what the mechanism prevents. Never set them in production.
 * Read when used, not at import.
 */

/** `BATON_UNSAFE_DISABLE_FENCING=1`: the store ignores fences on owner writes. */
export function unsafeFencingDisabled(): boolean {
  return process.env.BATON_UNSAFE_DISABLE_FENCING === "1";
}

/** `BATON_UNSAFE_DISABLE_OUTBOX=1`: effects write no intent before their call. */
export function unsafeOutboxDisabled(): boolean {
  return process.env.BATON_UNSAFE_DISABLE_OUTBOX === "1";
}
