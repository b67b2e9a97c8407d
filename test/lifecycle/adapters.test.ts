/**
 * The adapters against real services: PostgreSQL at 127.0.0.1:5432 (database `test`),
 * Redis at 127.0.0.1:6379, NATS at 127.0.0.1:4222.
 */
import type https from "node:https";
import type { Cluster } from "ioredis";
import { Redis } from "ioredis";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import pg from "pg";
import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import type {
  Closeable,
  HttpServerLike,
  IoredisLike,
  LifecycleOptions,
  NatsConnectionLike,
  PgPoolLike,
} from "../../src/lifecycle/index.js";
import {
  createLifecycle,
  ioredisCloseable,
  natsCloseable,
  pgPoolCloseable,
} from "../../src/lifecycle/index.js";

const PG_URL = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = "redis://127.0.0.1:6379";
const NATS_URL = "127.0.0.1:4222";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function pool(): pg.Pool {
  const p = new pg.Pool({ connectionString: PG_URL, max: 2 });
  cleanups.push(() => (p.ending ? undefined : p.end()));
  return p;
}

function redis(): Redis {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  cleanups.push(() => client.disconnect());
  return client;
}

async function nats(): Promise<NatsConnection> {
  const nc = await connect({ servers: NATS_URL });
  cleanups.push(() => (nc.isClosed() ? undefined : nc.close()));
  return nc;
}

const live = () => new AbortController().signal;
const aborted = () => AbortSignal.abort();

describe("pgPoolCloseable", () => {
  it("ends the pool", async () => {
    const p = pool();
    await p.query("select 1");
    expect(p.totalCount).toBe(1);
    await pgPoolCloseable(p).close(live());
    expect(p.ended).toBe(true);
    expect(p.totalCount).toBe(0);
    await expect(p.query("select 1")).rejects.toThrow(/after calling end/);
  });

  it("gives up when the signal aborts, saying how many clients are checked out", async () => {
    const p = pool();
    const client = await p.connect();
    const controller = new AbortController();
    const closing = pgPoolCloseable(p).close(controller.signal);
    setTimeout(() => controller.abort(), 30);
    await expect(closing).rejects.toThrow(
      "pool.end() did not finish in time; 1 client(s) still checked out",
    );
    client.release();
    await vi.waitFor(() => expect(p.ended).toBe(true));
  });
});

describe("ioredisCloseable", () => {
  it("quits the client", async () => {
    const client = redis();
    expect(await client.ping()).toBe("PONG");
    await ioredisCloseable(client).close(live());
    expect(client.status).toBe("end");
  });

  it("disconnects at once when the signal has aborted", async () => {
    const client = redis();
    await client.ping();
    await ioredisCloseable(client).close(aborted());
    expect(client.status).toBe("end");
  });

  it("closes a client that never connected", async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true });
    cleanups.push(() => client.disconnect());
    expect(client.status).toBe("wait");
    await ioredisCloseable(client).close(live());
    expect(client.status).toBe("end");
  });
});

describe("natsCloseable", () => {
  it("drains the connection", async () => {
    const nc = await nats();
    const received: string[] = [];
    const sub = nc.subscribe("lifecycle.test");
    const reading = (async () => {
      for await (const message of sub) received.push(message.string());
    })();
    nc.publish("lifecycle.test", "before close");
    await natsCloseable(nc).close(live());
    await reading;
    expect(nc.isClosed()).toBe(true);
    expect(received).toEqual(["before close"]);
  });

  it("closes at once when the signal has aborted", async () => {
    const nc = await nats();
    await natsCloseable(nc).close(aborted());
    expect(nc.isClosed()).toBe(true);
  });
});

describe("adapters in a lifecycle", () => {
  it("close the real connections in reverse order of registration", async () => {
    const options: LifecycleOptions = {
      graceMs: 3000,
      phaseBudgetsMs: { notReady: 50, stopIntake: 50, finalize: 50, close: 1000 },
      minDrainMs: 100,
      logReport: false,
      exitOnStop: false,
    };
    const lifecycle = createLifecycle(options);
    const p = pool();
    const client = redis();
    const nc = await nats();
    await Promise.all([p.query("select 1"), client.ping(), nc.flush()]);
    const order: string[] = [];
    const track = (closeable: Closeable): Closeable => ({
      name: closeable.name,
      close: async (signal) => {
        await closeable.close(signal);
        order.push(closeable.name);
      },
    });
    lifecycle.addCloseable(track(pgPoolCloseable(p)));
    lifecycle.addCloseable(track(ioredisCloseable(client)));
    lifecycle.addCloseable(track(natsCloseable(nc)));
    const report = await lifecycle.stop();
    expect(order).toEqual(["nats", "redis", "pg pool"]);
    expect(report.exitCode).toBe(0);
    expect([p.ended, client.status, nc.isClosed()]).toEqual([true, "end", true]);
  });
});

describe("adapter interfaces", () => {
  it("accept the libraries' own types", () => {
    expectTypeOf<pg.Pool>().toExtend<PgPoolLike>();
    expectTypeOf<Redis>().toExtend<IoredisLike>();
    expectTypeOf<Cluster>().toExtend<IoredisLike>();
    expectTypeOf<NatsConnection>().toExtend<NatsConnectionLike>();
    expectTypeOf<https.Server>().toExtend<HttpServerLike>();
  });
});
