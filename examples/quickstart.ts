/**
 * The README's example, run by the test suite: a two-step agent on the embedded store.
 * Run it yourself with `npx tsx examples/quickstart.ts [store-url]`.
 */
import { Baton, defineWorkflow } from "../src/index.js";

export const summarize = defineWorkflow(
  { name: "summarize", version: 1 },
  async (ctx, input: { url: string }) => {
    // Each step's result is durable before the next starts; on a resume it is not run again.
    const page = await ctx.step("fetch", () => `the text of ${input.url}`);
    const summary = await ctx.step(
      "summarize",
      (s) => `summary of ${page} (attempt ${s.attempt})`,
      {
        retry: { maxAttempts: 5 },
      },
    );
    return { summary };
  },
);

export async function main(store = process.argv[2] ?? "sqlite:quickstart.db"): Promise<unknown> {
  const baton = await Baton.open({ store, workflows: [summarize] });
  const worker = baton.worker({ concurrency: 8, handleSignals: false });
  await worker.start();
  const run = await baton.start(summarize, { url: "https://example.org" }, { id: "summary-1" });
  const output = await run.result();
  await worker.stop();
  await baton.close();
  return output;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
