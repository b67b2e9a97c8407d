#!/usr/bin/env node
import { buildProgram } from "./program.js";
import { BatonError } from "../workflow/errors.js";

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const known = error instanceof BatonError;
    console.error(
      `baton: ${known ? `${error.name}: ${error.message}` : String((error as Error)?.stack ?? error)}`,
    );
    process.exit(known ? 2 : 1);
  });
