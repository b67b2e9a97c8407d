/**
 * The execution log: the outside world's record of what ran where. Each time a step's
 * function (or an effect's `run`, or a compensation) starts, the worker appends a `start`
 * line; each piece of scripted model work appends a `chunk` line. It is written by the
 * workers with one `appendFileSync` per line, so it survives SIGKILL, and read by the
 * harness at the end to check that no completed step ran again.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";

/** The variable that tells a worker where its execution log is. */
export const EXEC_LOG_ENV = "BATON_CHAOS_LOG";

export type ExecLine = {
  run: string;
  step: string;
  pid: number;
  at: number;
  /** `start`: the function began (an attempt); `chunk`: one piece of model work done. */
  type: "start" | "chunk";
  attempt?: number;
  /** The long step: the chunk its attempt resumed from (saved progress). */
  from?: number;
  chunk?: number;
  tokens?: number;
};

export function appendExecLine(line: Omit<ExecLine, "pid" | "at">): void {
  const path = process.env[EXEC_LOG_ENV];
  if (!path) return;
  const full: ExecLine = { ...line, pid: process.pid, at: Date.now() };
  appendFileSync(path, `${JSON.stringify(full)}\n`);
}

/** Reads the log; a line torn by a kill mid-write is counted, not parsed. */
export function readExecLog(path: string): { lines: ExecLine[]; torn: number } {
  if (!existsSync(path)) return { lines: [], torn: 0 };
  const lines: ExecLine[] = [];
  let torn = 0;
  for (const text of readFileSync(path, "utf8").split("\n")) {
    if (!text) continue;
    try {
      lines.push(JSON.parse(text) as ExecLine);
    } catch {
      torn += 1;
    }
  }
  return { lines, torn };
}
