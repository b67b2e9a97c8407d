import { afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/index.js";
import { ManagementServer, type ManagementTarget } from "../../src/http/management-server.js";

const servers: ManagementServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

function target(): ManagementTarget & { drains: string[]; isReady: boolean } {
  const t = {
    drains: [] as string[],
    isReady: true,
    ready: () => t.isReady,
    drain: (reason: string) => void t.drains.push(reason),
  };
  return t;
}

async function serve(
  t: ManagementTarget,
  options: ConstructorParameters<typeof ManagementServer>[1] = {},
) {
  const server = new ManagementServer(t, { port: 0, ...options });
  servers.push(server);
  const { port } = await server.listen();
  return (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init);
}

describe("management server", () => {
  it("answers health and readiness, and drains on POST /drain", async () => {
    const t = target();
    const call = await serve(t);
    expect((await call("/healthz")).status).toBe(200);
    expect((await call("/readyz")).status).toBe(200);
    const drained = await call("/drain", { method: "POST" });
    expect(drained.status).toBe(202);
    expect(await drained.json()).toEqual({ status: "draining" });
    expect(t.drains).toEqual(["POST /drain"]);
    t.isReady = false;
    const ready = await call("/readyz");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: "draining" });
    expect((await call("/healthz")).status).toBe(200);
  });

  it("refuses wrong methods and unknown paths", async () => {
    const call = await serve(target());
    expect((await call("/drain")).status).toBe(405);
    expect((await call("/nope")).status).toBe(404);
  });

  it("guards admin routes with the bearer token, leaving probes open", async () => {
    const t = target();
    const call = await serve(t, { token: "s3cret" });
    expect((await call("/drain", { method: "POST" })).status).toBe(401);
    expect(
      (await call("/drain", { method: "POST", headers: { Authorization: "Bearer wrong" } })).status,
    ).toBe(401);
    expect(t.drains).toEqual([]);
    expect(
      (await call("/drain", { method: "POST", headers: { Authorization: "Bearer s3cret" } }))
        .status,
    ).toBe(202);
    expect((await call("/readyz")).status).toBe(200);
  });

  it("refuses to listen beyond loopback without a token", () => {
    const error = (() => {
      try {
        new ManagementServer(target(), { host: "0.0.0.0", token: "" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      /0\.0\.0\.0 is reachable beyond this machine.*set http\.token/,
    );
  });
});
