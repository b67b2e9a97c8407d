import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Lifecycle, LifecycleOptions } from "../../src/lifecycle/index.js";
import { attachHttpServer, createLifecycle } from "../../src/lifecycle/index.js";

const options: LifecycleOptions = {
  graceMs: 3000,
  safetyMarginMs: 200,
  phaseBudgetsMs: { notReady: 50, stopIntake: 100, finalize: 100, close: 300 },
  minDrainMs: 100,
  logReport: false,
  exitOnStop: false,
};

interface Reply {
  status: number;
  connection: string | undefined;
  body: string;
  reusedSocket: boolean;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A deferred the test resolves by hand. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

interface Served {
  server: http.Server;
  port: number;
  lifecycle: Lifecycle;
  /** Resolves once the drain phase has begun (intake has stopped by then). */
  drainStarted: Promise<void>;
  /** Lets the drain phase end. */
  finishDrain: () => void;
}

async function serve(
  handler: http.RequestListener,
  closeableOptions = {},
  overrides: LifecycleOptions = {},
): Promise<Served> {
  const server = http.createServer(handler);
  const lifecycle = createLifecycle({ ...options, ...overrides });
  attachHttpServer(lifecycle, server, closeableOptions);
  const started = gate();
  const release = gate();
  lifecycle.on("drain", "test gate", async () => {
    started.open();
    await release.opened;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    release.open();
    await lifecycle.stop();
    server.closeAllConnections();
  });
  const { port } = server.address() as AddressInfo;
  return { server, port, lifecycle, drainStarted: started.opened, finishDrain: release.open };
}

function request(port: number, agent: http.Agent | false, path = "/"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          body,
          reusedSocket: req.reusedSocket,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

function keepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  return agent;
}

describe("attachHttpServer", () => {
  it("answers a keep-alive request arriving on an open socket during shutdown, with Connection: close", async () => {
    const { port, lifecycle, drainStarted, finishDrain, server } = await serve((req, res) => {
      res.end(`hello ${req.url}`);
    });
    const agent = keepAliveAgent();
    const sockets = new Set<Socket>();
    server.on("connection", (socket: Socket) => sockets.add(socket));

    const first = await request(port, agent, "/first");
    expect(first).toMatchObject({ status: 200, connection: "keep-alive", reusedSocket: false });

    const stopping = lifecycle.stop();
    await drainStarted;
    const second = await request(port, agent, "/second");
    expect(second).toEqual({
      status: 200,
      connection: "close",
      body: "hello /second",
      reusedSocket: true,
    });
    expect(sockets.size).toBe(1);
    // Intake has stopped: a new connection is refused.
    await expect(request(port, false)).rejects.toMatchObject({ code: "ECONNREFUSED" });

    finishDrain();
    const report = await stopping;
    expect(report.exitCode).toBe(0);
    expect(server.listening).toBe(false);
    expect([...sockets].every((s) => s.destroyed)).toBe(true);
  });

  it("finishes a response in flight when shutdown starts, with Connection: close", async () => {
    const received = gate();
    const respond = gate();
    const { port, lifecycle, drainStarted, finishDrain } = await serve((_req, res) => {
      received.open();
      void respond.opened.then(() => res.end("done"));
    });
    const agent = keepAliveAgent();
    const reply = request(port, agent);
    await received.opened;
    const stopping = lifecycle.stop();
    await drainStarted;
    respond.open();
    expect(await reply).toMatchObject({ status: 200, connection: "close", body: "done" });
    finishDrain();
    expect((await stopping).exitCode).toBe(0);
  });

  it("closes idle keep-alive sockets after idleCloseDelayMs", async () => {
    const { port, lifecycle, drainStarted, finishDrain, server } = await serve(
      (_req, res) => res.end("ok"),
      { idleCloseDelayMs: 100 },
    );
    const agent = keepAliveAgent();
    let socket: Socket | undefined;
    server.on("connection", (s: Socket) => (socket = s));
    await request(port, agent);
    const stopping = lifecycle.stop();
    await drainStarted;
    expect(socket?.destroyed).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(socket?.destroyed).toBe(true);
    expect(lifecycle.state).toBe("draining");
    finishDrain();
    expect((await stopping).exitCode).toBe(0);
  });

  it("destroys connections still busy at the close deadline and records the timeout", async () => {
    // Close deadline at 1000 - 200 = 800 ms.
    const { port, lifecycle, finishDrain } = await serve(
      (_req, res) => {
        res.writeHead(200);
        res.write("partial"); // never ends
      },
      {},
      { graceMs: 1000 },
    );
    const agent = keepAliveAgent();
    const reply = request(port, agent);
    reply.catch(() => {}); // asserted below
    await new Promise((resolve) => setTimeout(resolve, 50));
    finishDrain();
    const report = await lifecycle.stop();
    await expect(reply).rejects.toMatchObject({ code: "ECONNRESET" });
    const close = report.phases.find((p) => p.phase === "close");
    expect(close?.handlers).toEqual([
      expect.objectContaining({ name: "http server", outcome: "timed-out" }),
    ]);
  });
});
