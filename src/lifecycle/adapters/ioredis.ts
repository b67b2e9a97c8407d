import type { Closeable } from "../types.js";
import { gracefulOrForced } from "./graceful-or-forced.js";

/** The part of an ioredis client (`Redis` or `Cluster`) this adapter uses; ioredis is not imported. */
export interface IoredisLike {
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  /** ioredis connection status; `"end"` once closed. */
  readonly status: string;
}

/**
 * Closes an ioredis client with `quit()` (replies to queued commands arrive first);
 * if the signal aborts first, `disconnect()` drops the connection at once.
 */
export function ioredisCloseable(client: IoredisLike, options: { name?: string } = {}): Closeable {
  return {
    name: options.name ?? "redis",
    close(signal) {
      if (client.status === "end") return;
      return gracefulOrForced(
        signal,
        () => client.quit(),
        () => client.disconnect(false),
      );
    },
  };
}
