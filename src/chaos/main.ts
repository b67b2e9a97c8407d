/**
 * A stand-alone entry for `baton chaos`, for trying it from a checkout before (and besides)
 * the main CLI: `npx tsx src/chaos/main.ts chaos --runs 100 --duration 20s`.
 */
import { Command } from "commander";
import { DEFAULT_STORE_URL } from "../store/open-store.js";
import { BatonError } from "../workflow/errors.js";
import { registerChaosCommand } from "./chaos-command.js";

const program = new Command("baton").option(
  "--store <url>",
  "store URL (env BATON_STORE)",
  process.env.BATON_STORE ?? DEFAULT_STORE_URL,
);
registerChaosCommand(program, (c) => c.optsWithGlobals<{ store: string }>().store);
program.parseAsync(process.argv).catch((error: unknown) => {
  const known = error instanceof BatonError;
  console.error(
    `baton: ${known ? `${error.name}: ${error.message}` : String((error as Error)?.stack ?? error)}`,
  );
  process.exit(known ? 2 : 1);
});
