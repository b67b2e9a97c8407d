/**
 * Runs `graceful()`; if `signal` aborts first (or already has), runs `forced()` too.
 * Settles with whichever settles first after that. Shared by the adapters whose client
 * has both a polite close and a hard one.
 */
export function gracefulOrForced(
  signal: AbortSignal,
  graceful: () => Promise<unknown>,
  forced: () => unknown,
): Promise<void> {
  if (signal.aborted) return Promise.resolve(forced()).then(() => undefined);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      Promise.resolve()
        .then(forced)
        .then(() => resolve(), reject);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    graceful()
      .finally(() => signal.removeEventListener("abort", onAbort))
      .then(() => resolve(), reject);
  });
}
