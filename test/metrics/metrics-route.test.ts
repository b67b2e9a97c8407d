import { afterEach, describe, expect, it } from "vitest";
import { Counter, Registry } from "prom-client";
import { BatonMetrics } from "../../src/metrics/baton-metrics.js";
import { metricsRoute } from "../../src/metrics/metrics-route.js";
import {
  ManagementServer,
  type ManagementServerOptions,
} from "../../src/http/management-server.js";

const servers: ManagementServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function serve(options: ManagementServerOptions) {
  const server = new ManagementServer(
    { ready: () => true, drain: () => {} },
    { port: 0, ...options },
  );
  servers.push(server);
  const { port } = await server.listen();
  return (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init);
}

describe("GET /metrics", () => {
  it("serves the exposition of Baton's registry", async () => {
    const metrics = new BatonMetrics();
    metrics.handedOff("shutdown");
    const call = await serve({ routes: [metricsRoute(metrics)] });
    const res = await call("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('baton_handoffs_total{reason="shutdown"} 1');
    expect((await call("/metrics", { method: "POST" })).status).toBe(405);
  });

  it("adds the registries it is given", async () => {
    const metrics = new BatonMetrics();
    const app = new Registry();
    new Counter({ name: "app_requests_total", help: "requests", registers: [app] }).inc(7);
    const call = await serve({ routes: [metricsRoute(metrics, { include: [app] })] });
    const text = await (await call("/metrics")).text();
    expect(text).toContain("app_requests_total 7");
    expect(text).toContain("# TYPE baton_steps_total counter");
  });

  it("is a read route: open on loopback, behind the token on other addresses", async () => {
    const route = metricsRoute(new BatonMetrics());
    expect(route).toMatchObject({ method: "GET", path: "/metrics", access: "read" });
    const loopback = await serve({ routes: [route], token: "s3cret" });
    expect((await loopback("/metrics")).status).toBe(200);
    const exposed = await serve({ routes: [route], token: "s3cret", host: "0.0.0.0" });
    expect((await exposed("/metrics")).status).toBe(401);
    expect(
      (await exposed("/metrics", { headers: { Authorization: "Bearer s3cret" } })).status,
    ).toBe(200);
  });
});
