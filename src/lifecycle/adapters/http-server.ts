import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Lifecycle } from "../lifecycle.js";
import type { Closeable } from "../types.js";

/** A `node:http` or `node:https` server. */
export type HttpServerLike = HttpServer | HttpsServer;

/** Options of {@link httpServerCloseable} and {@link attachHttpServer}. */
export interface HttpServerCloseableOptions {
  /** Name in the shutdown report (Default: "http server"). */
  name?: string;
  /**
   * How long idle keep-alive sockets stay open after intake stops, so that a request a
   * client is already sending on one is answered (with `Connection: close`) instead of
   * meeting a reset. They are closed after this delay, and at the latest when the
   * `close` phase begins. (Default: 1000.)
   */
  idleCloseDelayMs?: number;
}

/** A closeable HTTP server that also knows how to stop intake. */
export interface HttpServerCloseable extends Closeable {
  /**
   * Stops accepting connections (the listening socket closes) while open keep-alive
   * sockets stay up; from now on every response not yet started carries
   * `Connection: close`, so each client's socket ends after its current response.
   * Idempotent; `close()` runs it too if it has not run.
   */
  stopIntake(): void;
  /** True once {@link HttpServerCloseable.stopIntake} has run. */
  readonly closing: boolean;
}

/**
 * Wraps an HTTP server for graceful shutdown. Create it before the server takes
 * requests: it hooks the `request` event to track responses in flight.
 *
 * `close(signal)` stops intake if needed, closes idle sockets, and resolves when the
 * server has closed, that is when every response in flight has finished. When `signal`
 * aborts, every remaining connection is destroyed (`closeAllConnections()`).
 * Upgraded connections (WebSockets) are not the server's any more: close them apart.
 */
export function httpServerCloseable(
  server: HttpServerLike,
  options: HttpServerCloseableOptions = {},
): HttpServerCloseable {
  const name = options.name ?? "http server";
  const idleCloseDelayMs = options.idleCloseDelayMs ?? 1000;
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  let closingConnections = false;
  let serverClosed: Promise<void> = Promise.resolve();
  let idleTimer: NodeJS.Timeout | undefined;

  const markClose = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader("Connection", "close");
  };
  // A response that had already sent keep-alive headers leaves an idle socket behind.
  const onResponseClosed = (res: ServerResponse) => {
    inFlight.delete(res);
    if (closingConnections) setImmediate(() => server.closeIdleConnections());
  };
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    if (closing) markClose(res);
    inFlight.add(res);
    res.once("close", () => onResponseClosed(res));
  });

  const closeIdle = () => {
    clearTimeout(idleTimer);
    closingConnections = true;
    server.closeIdleConnections();
  };

  const stopIntake = () => {
    if (closing) return;
    closing = true;
    for (const res of inFlight) markClose(res);
    serverClosed = new Promise((resolve) => closeListenerOnly(server, () => resolve()));
    idleTimer = setTimeout(closeIdle, idleCloseDelayMs);
    idleTimer.unref();
  };

  return {
    name,
    get closing() {
      return closing;
    },
    stopIntake,
    async close(signal) {
      stopIntake();
      closeIdle();
      const onAbort = () => server.closeAllConnections();
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      try {
        await serverClosed;
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}

/**
 * `server.close()` without its first step: since Node 19 it destroys idle keep-alive
 * sockets at once, which resets a request a client is sending on one at that moment.
 * The rest (stop listening, stop the connection-timeout checker) is what we want.
 * `done` runs when the last connection has ended (or at once if not listening).
 */
function closeListenerOnly(server: HttpServerLike, done: () => void): void {
  const own = Object.getOwnPropertyDescriptor(server, "closeIdleConnections");
  Object.defineProperty(server, "closeIdleConnections", {
    value: () => {},
    configurable: true,
    writable: true,
  });
  try {
    server.close(() => done());
  } finally {
    if (own) Object.defineProperty(server, "closeIdleConnections", own);
    else Reflect.deleteProperty(server, "closeIdleConnections");
  }
}

/**
 * Wraps `server` with {@link httpServerCloseable} and registers it on `lifecycle`: its
 * `stopIntake()` in the `stopIntake` phase, its `close()` as a closeable. Returns it.
 */
export function attachHttpServer(
  lifecycle: Pick<Lifecycle, "on" | "addCloseable">,
  server: HttpServerLike,
  options: HttpServerCloseableOptions = {},
): HttpServerCloseable {
  const closeable = httpServerCloseable(server, options);
  lifecycle.on("stopIntake", closeable.name, () => closeable.stopIntake());
  lifecycle.addCloseable(closeable);
  return closeable;
}
