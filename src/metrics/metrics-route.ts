import { Registry } from "prom-client";
import type { ManagementRoute } from "../http/management-server.js";
import type { BatonMetrics } from "./baton-metrics.js";

export type MetricsRouteOptions = {
  /**
   * Other registries to expose on the same page, e.g. prom-client's global `register`
   * after `collectDefaultMetrics()`. Their names must not clash with Baton's. Only
   * Baton's own registry is guaranteed to pass `promtool check metrics`. (Default: none)
   */
  include?: readonly Registry[];
};

/**
 * `GET /metrics` for the management server: the Prometheus text exposition of Baton's
 * registry (plus `include`). Access `read`: open on loopback, behind the token elsewhere.
 */
export function metricsRoute(
  metrics: BatonMetrics,
  options: MetricsRouteOptions = {},
): ManagementRoute {
  const registry =
    options.include && options.include.length > 0
      ? Registry.merge([metrics.registry, ...options.include])
      : metrics.registry;
  return {
    method: "GET",
    path: "/metrics",
    access: "read",
    handle: async (_req, res) => {
      const body = await registry.metrics();
      res.writeHead(200, {
        "Content-Type": registry.contentType,
        "Content-Length": Buffer.byteLength(body),
        "Cache-Control": "no-store",
      });
      res.end(body);
    },
  };
}
