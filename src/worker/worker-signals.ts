const SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * SIGTERM/SIGINT for a worker: the first calls `first`, every later one `again`.
 * Returns a function that removes the handlers.
 */
export function installWorkerSignals(handlers: {
  first: (signal: NodeJS.Signals) => void;
  again: (signal: NodeJS.Signals) => void;
}): () => void {
  let seen = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (seen) return handlers.again(signal);
    seen = true;
    handlers.first(signal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  };
}
