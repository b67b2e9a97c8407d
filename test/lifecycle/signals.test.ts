import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { ShutdownReport } from "../../src/lifecycle/index.js";

const fixture = fileURLToPath(new URL("./fixtures/service.ts", import.meta.url));
const GRACE_MS = 1500;

interface Service {
  child: ChildProcess;
  port: number;
  /** Resolves when the service prints a line with `state: <state>`. */
  waitFor(state: string): Promise<void>;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  stderr(): string;
}

const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

async function startService(mode: string): Promise<Service> {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: { ...process.env, FIXTURE_MODE: mode },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  const waiters: { state: string; resolve: () => void }[] = [];
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = new Promise<number>((resolve, reject) => {
    child.once("exit", (code) =>
      reject(new Error(`fixture exited (${code}) before ready: ${stderr}`)),
    );
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      let newline: number;
      while ((newline = stdout.indexOf("\n")) >= 0) {
        const line = JSON.parse(stdout.slice(0, newline)) as Record<string, unknown>;
        stdout = stdout.slice(newline + 1);
        lines.push(line);
        if (line["ready"]) resolve(line["port"] as number);
        for (const w of waiters.filter((w) => w.state === line["state"])) w.resolve();
      }
    });
  });
  const port = await ready;
  return {
    child,
    port,
    exited,
    stderr: () => stderr,
    waitFor: (state) =>
      lines.some((l) => l["state"] === state)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ state, resolve })),
  };
}

function reportOf(stderr: string): ShutdownReport {
  const line = stderr.split("\n").find((l) => l.includes('"msg":"shutdown report"'));
  expect(line, `no report line in stderr:\n${stderr}`).toBeDefined();
  return (JSON.parse(line!) as { report: ShutdownReport }).report;
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, agent: false }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

describe("a service under real signals", () => {
  it("on SIGTERM runs every phase, writes the report and exits 0", async () => {
    const service = await startService("clean");
    expect(await get(service.port)).toBe("ok");
    const sentAt = Date.now();
    service.child.kill("SIGTERM");
    const { code, signal, at } = await service.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - sentAt).toBeLessThan(GRACE_MS);
    const report = reportOf(service.stderr());
    expect(report).toMatchObject({
      reason: "SIGTERM",
      escalated: false,
      watchdog: false,
      exitCode: 0,
    });
    expect(report.details).toEqual({ mode: "clean" });
    expect(report.phases.map((p) => p.phase)).toEqual([
      "notReady",
      "preStop",
      "stopIntake",
      "drain",
      "finalize",
      "close",
    ]);
    expect(report.phases.every((p) => !p.timedOut && !p.skipped && p.errors.length === 0)).toBe(
      true,
    );
  });

  it("treats SIGINT like SIGTERM", async () => {
    const service = await startService("clean");
    service.child.kill("SIGINT");
    expect((await service.exited).code).toBe(0);
    expect(reportOf(service.stderr()).reason).toBe("SIGINT");
  });

  it("escalates on a second SIGTERM during preStop: skips stopIntake and drain", async () => {
    const service = await startService("long");
    service.child.kill("SIGTERM");
    await service.waitFor("not-ready");
    service.child.kill("SIGTERM");
    const { code } = await service.exited;
    expect(code).toBe(1);
    const report = reportOf(service.stderr());
    expect(report.escalated).toBe(true);
    expect(report.phases.map((p) => [p.phase, p.skipped])).toEqual([
      ["notReady", false],
      ["preStop", false],
      ["stopIntake", true],
      ["drain", true],
      ["finalize", false],
      ["close", false],
    ]);
    expect(report.phases.find((p) => p.phase === "close")?.handlers).toEqual([
      expect.objectContaining({ name: "http server", outcome: "ok" }),
    ]);
  });

  it("escalates on a second SIGTERM during drain: aborts it and goes to finalize", async () => {
    const service = await startService("long");
    service.child.kill("SIGTERM");
    await service.waitFor("draining");
    service.child.kill("SIGTERM");
    const { code } = await service.exited;
    expect(code).toBe(1);
    const report = reportOf(service.stderr());
    expect(report.escalated).toBe(true);
    expect(report.phases.find((p) => p.phase === "drain")).toMatchObject({
      interrupted: true,
      timedOut: false,
      skipped: false,
    });
    expect(report.phases.map((p) => p.phase).slice(-2)).toEqual(["finalize", "close"]);
  });

  it("exits 1 before graceMs when a handler ignores its abort signal", async () => {
    const service = await startService("ignore-abort");
    const sentAt = Date.now();
    service.child.kill("SIGTERM");
    const { code, signal, at } = await service.exited;
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    expect(at - sentAt).toBeLessThan(GRACE_MS);
    const report = reportOf(service.stderr());
    const drain = report.phases.find((p) => p.phase === "drain");
    expect(drain?.timedOut).toBe(true);
    expect(drain?.handlers[0]).toMatchObject({ name: "work (ignore-abort)", outcome: "timed-out" });
    expect(report.phases.at(-1)?.phase).toBe("close");
  });

  it("lets the watchdog exit 1 with the report when the event loop stalls past it", async () => {
    const service = await startService("block");
    const sentAt = Date.now();
    service.child.kill("SIGTERM");
    const { code, at } = await service.exited;
    expect(code).toBe(1);
    expect(at - sentAt).toBeLessThan(GRACE_MS);
    const report = reportOf(service.stderr());
    expect(report.watchdog).toBe(true);
    expect(report.exitCode).toBe(1);
  });
});
