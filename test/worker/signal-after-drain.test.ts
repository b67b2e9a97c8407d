import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../support/temp-dir.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/slow-close-worker.ts", import.meta.url));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("the kubelet's SIGTERM after a quick POST /drain", () => {
  it("finds the worker still handling signals while it closes, and it exits 0", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const child = spawn(
      process.execPath,
      ["--import", "tsx", FIXTURE, `sqlite:${join(dir.path, "baton.db")}`],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, BATON_LOG_LEVEL: "info" } },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    cleanups.push(() => void child.kill("SIGKILL"));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const nextLine = async () => String((await lines.next()).value);

    const { port } = JSON.parse(await nextLine()) as { port: number };
    // The preStop hook: nothing is in flight, so the drain is over at once.
    const drain = await fetch(`http://127.0.0.1:${port}/drain`, { method: "POST" });
    expect(drain.status).toBeLessThan(300);
    expect(await nextLine()).toBe("closing");
    // Then the kubelet sends SIGTERM, while the worker is still closing.
    child.kill("SIGTERM");

    const [code, signal] = await exited;
    // On failure, the worker's log (its shutdown report is the last line) says why.
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
  });
});
