import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { tempDir } from "../support/temp-dir.js";
import { FIXTURE_WORKFLOWS } from "../support/worker-processes.js";

let dir: ReturnType<typeof tempDir>;
let store: string;
beforeAll(() => {
  dir = tempDir();
  store = `sqlite:${join(dir.path, "cli.db")}`;
});
afterAll(() => dir.remove());

describe("baton CLI", () => {
  it("starts, lists, shows and cancels runs", async () => {
    const started = await runCli([
      "--store",
      store,
      "start",
      "batch",
      "--module",
      FIXTURE_WORKFLOWS,
      "--id",
      "job-1",
      "--input",
      '{"chunks":1,"chunkMs":1}',
    ]);
    expect(started.stderr).toBe("");
    expect(JSON.parse(started.stdout)).toEqual({ id: "job-1", workflow: "batch", created: true });

    // The store now knows nothing of "batch" from a worker, but BATON_STORE works as --store does.
    const runs = await runCli(["runs"], { BATON_STORE: store });
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(/^ID\s+WORKFLOW\s+STATUS/);
    expect(runs.stdout).toMatch(/job-1\s+batch\s+queued/);

    const shown = await runCli(["--store", store, "run", "job-1"]);
    expect(shown.stdout).toContain("run job-1  workflow batch v1  status queued");
    expect(shown.stdout).toMatch(/timeline:\n\d\d:\d\d:\d\d\.\d{3}\s+created/);

    const cancelled = await runCli(["--store", store, "cancel", "job-1"]);
    expect(JSON.parse(cancelled.stdout)).toEqual({ id: "job-1", status: "cancelled" });
    const json = JSON.parse(
      (await runCli(["--store", store, "runs", "--status", "cancelled", "--json"])).stdout,
    ) as Array<{ id: string }>;
    expect(json.map((r) => r.id)).toEqual(["job-1"]);
  });

  it.each([
    [
      ["worker", "no/such/workflows.ts"],
      /workflows module "no\/such\/workflows.ts" does not exist/,
    ],
    [
      ["start", "nope", "--input", "{}"],
      /unknown workflow "nope"; known here or to this store's workers: none/,
    ],
    [
      ["start", "batch", "--module", FIXTURE_WORKFLOWS, "--input", "{oops"],
      /--input is not valid JSON/,
    ],
    [["runs", "--status", "weird"], /--status "weird" is not a run status/],
    [["run", "missing"], /run missing does not exist/],
  ])("refuses %j with a clear message and exit code 2", async (args, message) => {
    const result = await runCli(["--store", store, ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it("refuses a malformed store URL", async () => {
    const result = await runCli(["--store", "sqlite", "runs"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/store URL "sqlite" is not one Baton knows; use "sqlite:PATH"/);
  });
});
