import type { Logger } from "pino";

type Stoppable = { stop(reason: string): Promise<unknown> };

/**
 * First SIGTERM/SIGINT: a graceful stop, then exit 0 (1 if the stop failed).
 * A second signal during the stop exits at once with code 1.
 * Returns a function that removes the handlers.
 */
export function installStopSignals(target: Stoppable, log: Logger): () => void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, "second signal during shutdown; exiting now");
      process.exit(1);
    }
    signalled = true;
    log.info({ signal }, "stopping gracefully");
    target.stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "graceful stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}
