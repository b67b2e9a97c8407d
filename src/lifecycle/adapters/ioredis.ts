import type { Closeable } from "../types.js";
import { gracefulOrForced } from "./graceful-or-forced.js";

/** The part of an ioredis client (`Redis` or `Cluster`) this adapter uses; ioredis is not imported. */
export interface IoredisLike {
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  /** ioredis connection status: `"wait"` before the first connect, `"end"` once closed. */
  readonly status: string;
  once(event: "end", listener: () => void): unknown;
}

/**
 * Closes an ioredis client with `quit()` (replies to queued commands arrive first);
 * if the signal aborts first, `disconnect()` drops the connection at once. Resolves
 * when the client has emitted `end` (`status` is `"end"`), not merely when QUIT is acked.
 */
export function ioredisCloseable(client: IoredisLike, options: { name?: string } = {}): Closeable {
  return {
    name: options.name ?? "redis",
    close(signal) {
      if (client.status === "end") return;
      const ended = new Promise<void>((resolve) => client.once("end", resolve));
      const disconnect = () => {
        client.disconnect(false);
        return ended;
      };
      // Never connected (lazyConnect): nothing to flush, and quit() would connect first.
      if (client.status === "wait") return disconnect();
      return gracefulOrForced(
        signal,
        async () => {
          await client.quit();
          await ended;
        },
        disconnect,
      );
    },
  };
}
