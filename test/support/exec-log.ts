import { existsSync, readFileSync } from "node:fs";
import type { LogLine } from "../fixtures/workflows.js";

/** The execution log the fixture workflows append to. */
export function readExecLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);
}
