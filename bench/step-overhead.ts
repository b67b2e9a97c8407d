/**
 * Durable step overhead on SQLite, as a ratio to a raw better-sqlite3 commit at the same
 * synchronous level, measured in one run on one disk. Both sides commit one small row per
 * transaction; Baton's side is a workflow of `steps` steps on an in-process worker.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { Baton, defineWorkflow } from "../src/index.js";
import { tempDir } from "../test/support/temp-dir.js";

export type StepOverhead = { synchronous: string; rawMs: number; batonMs: number; ratio: number };

export async function measureStepOverhead(
  synchronous: "full" | "normal",
  steps = 400,
  rounds = 3,
): Promise<StepOverhead> {
  const dir = tempDir("baton-bench-");
  try {
    const raw = new Database(join(dir.path, "raw.db"));
    raw.pragma("journal_mode = WAL");
    raw.pragma(`synchronous = ${synchronous}`);
    raw.exec(
      "CREATE TABLE steps (run_id TEXT, seq INTEGER, output TEXT, PRIMARY KEY (run_id, seq)) WITHOUT ROWID",
    );
    const insert = raw.prepare("INSERT INTO steps VALUES (?, ?, ?)");

    // From the first step's start to the last step's commit: steps only, not claim or finish.
    let window = { start: 0, end: 0 };
    const wf = defineWorkflow({ name: "bench-steps" }, async (ctx, input: { steps: number }) => {
      for (let i = 0; i < input.steps; i++) {
        await ctx.step(`s${i}`, () => {
          if (i === 0) window.start = performance.now();
          return { i };
        });
      }
      window.end = performance.now();
      return input.steps;
    });
    const baton = await Baton.open({
      store: `sqlite:${join(dir.path, "baton.db")}?synchronous=${synchronous}`,
      workflows: [wf],
    });
    const worker = baton.worker({ handleSignals: false, concurrency: 1 });
    await worker.start();

    let rawTotal = 0;
    let batonTotal = 0;
    for (let round = 0; round < rounds; round++) {
      // Interleave the two sides so drift in the machine hits both alike.
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) insert.run(`r${round}`, i, JSON.stringify({ i }));
      rawTotal += performance.now() - t0;

      window = { start: 0, end: 0 };
      await (await baton.start(wf, { steps }, { id: `bench-${round}` })).result();
      batonTotal += window.end - window.start;
    }
    await worker.stop();
    await baton.close();
    raw.close();
    const rawMs = rawTotal / (steps * rounds);
    const batonMs = batonTotal / (steps * rounds);
    return { synchronous, rawMs, batonMs, ratio: batonMs / rawMs };
  } finally {
    dir.remove();
  }
}
