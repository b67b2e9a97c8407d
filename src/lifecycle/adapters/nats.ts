import type { Closeable } from "../types.js";
import { gracefulOrForced } from "./graceful-or-forced.js";

/** The part of a NATS connection (`nats` package) this adapter uses; nats is not imported. */
export interface NatsConnectionLike {
  drain(): Promise<void>;
  close(): Promise<void>;
  /** Resolves once the connection is closed (with an Error if it closed on one). */
  closed(): Promise<unknown>;
  isClosed(): boolean;
  isDraining(): boolean;
}

/**
 * Closes a NATS connection with `drain()`: subscriptions finish the messages they hold
 * and publishes are flushed. If the signal aborts first, `close()` ends it at once.
 */
export function natsCloseable(nc: NatsConnectionLike, options: { name?: string } = {}): Closeable {
  return {
    name: options.name ?? "nats",
    close(signal) {
      if (nc.isClosed()) return;
      // Someone else started the drain: wait for it instead of failing a second drain().
      const graceful = nc.isDraining() ? () => nc.closed() : () => nc.drain();
      return gracefulOrForced(signal, graceful, () => nc.close());
    },
  };
}
