import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { ConfigError } from "../workflow/errors.js";

/** What the management server asks of the process it serves. */
export interface ManagementTarget {
  /** False from the first millisecond of a shutdown. */
  ready(): boolean;
  /** Starts the same graceful shutdown as SIGTERM; idempotent. */
  drain(reason: string): void;
}

/** A route added by another module (metrics, the JSON API). */
export type ManagementRoute = {
  method: "GET" | "POST";
  /** Exact path, or a prefix ending in `/` that matches everything under it. */
  path: string;
  /**
   * `public`: never needs the token (health probes). `read`: needs it on a non-loopback
   * address. `admin`: needs it whenever a token is set, and one must be set off loopback.
   */
  access: "public" | "read" | "admin";
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | void;
};

export type ManagementServerOptions = {
  /** (Default: 9464; 0 picks a free port) */
  port?: number;
  /** (Default: "127.0.0.1") Anything else exposes the server beyond this machine. */
  host?: string;
  /**
   * Bearer token for admin routes (`POST /drain`, the API). Required when `host` is not a
   * loopback address; on loopback, routes are open unless a token is set.
   * (Default: env BATON_ADMIN_TOKEN)
   */
  token?: string;
  routes?: readonly ManagementRoute[];
};

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * The management HTTP server: `GET /healthz` (the process is alive), `GET /readyz` (503 once
 * shutdown begins), `POST /drain` (a Kubernetes preStop hook's target; idempotent; starts
 * the same shutdown as SIGTERM), plus routes other modules add.
 */
export class ManagementServer {
  readonly server: Server;
  private readonly host: string;
  private readonly port: number;
  private readonly token: string | undefined;
  private readonly routes: ManagementRoute[];

  constructor(
    private readonly target: ManagementTarget,
    options: ManagementServerOptions = {},
  ) {
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port ?? 9464;
    this.token = options.token ?? process.env.BATON_ADMIN_TOKEN;
    if (!LOOPBACK.has(this.host) && !this.token) {
      throw new ConfigError(
        `management server on ${this.host} is reachable beyond this machine, so its admin routes need a token; ` +
          `set http.token (or BATON_ADMIN_TOKEN), or listen on 127.0.0.1`,
      );
    }
    this.routes = [
      {
        method: "GET",
        path: "/healthz",
        access: "public",
        handle: (_req, res) => json(res, 200, { status: "ok" }),
      },
      {
        method: "GET",
        path: "/readyz",
        access: "public",
        handle: (_req, res) =>
          this.target.ready()
            ? json(res, 200, { status: "ready" })
            : json(res, 503, { status: "draining" }),
      },
      {
        method: "POST",
        path: "/drain",
        access: "admin",
        handle: (_req, res) => {
          this.target.drain("POST /drain");
          json(res, 202, { status: "draining" });
        },
      },
      ...(options.routes ?? []),
    ];
    this.server = createServer((req, res) => void this.dispatch(req, res));
  }

  /** Listens; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://management");
    const route = this.routes.find((r) =>
      r.path.endsWith("/") ? url.pathname.startsWith(r.path) : url.pathname === r.path,
    );
    if (!route) return json(res, 404, { error: `no route ${url.pathname}` });
    if (route.method !== req.method) {
      res.setHeader("Allow", route.method);
      return json(res, 405, { error: `${url.pathname} takes ${route.method}` });
    }
    const needsToken =
      this.token !== undefined &&
      (route.access === "admin" || (route.access === "read" && !LOOPBACK.has(this.host)));
    if (needsToken && !this.authorized(req)) {
      res.setHeader("WWW-Authenticate", "Bearer");
      return json(res, 401, { error: "this route needs Authorization: Bearer <token>" });
    }
    try {
      await route.handle(req, res, url);
    } catch (error) {
      if (!res.headersSent) json(res, 500, { error: (error as Error).message });
      else res.end();
    }
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? "";
    const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    const expected = Buffer.from(this.token ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}
