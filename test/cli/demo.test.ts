/**
 * `baton demo` (what `npm start` runs): the real command as a child process, with small
 * numbers, and its progress line on a terminal and off one.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ChaosProgress } from "../../src/chaos/progress.js";
import { ProgressLine, PLAIN_EVERY_MS } from "../../src/demo/demo-progress.js";
import { runCli } from "../support/cli.js";
import { tempDir } from "../support/temp-dir.js";

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** The number after `label` on the report's `terminations` line. */
function terminated(stdout: string, kind: "k8s" | "sigkill" | "stop"): number {
  const line = /^\s*terminations\s+(.*)$/m.exec(stdout)?.[1] ?? "";
  return Number(new RegExp(`\\b${kind} (\\d+)`).exec(line)?.[1] ?? NaN);
}

describe("baton demo (what npm start runs)", () => {
  it("terminates workers every way while runs move money, and reports zero violations (exit 0)", async () => {
    const dir = tempDir();
    try {
      // Four workers: the first three terminations of seed 7 (k8s, SIGKILL, SIGSTOP, all
      // within 4 s) then always find two workers up, however slowly replacements start.
      const args = ["demo", "--runs", "40", "--workers", "4", "--duration", "5s", "--seed", "7"];
      const { code, stdout, stderr } = await runCli(
        [...args, "--dir", join(dir.path, "demo")],
        {},
        90_000,
      );
      const context = `${stdout}\n${stderr}`;

      expect(stdout, context).toMatch(/^Baton demo: 4 worker processes .* 40 agent runs/m);
      expect(stdout, context).toMatch(/^\s+PASS\s+every invariant held/m);
      expect(stdout, context).not.toMatch(/^\s+FAIL\b/m);
      expect(stdout, context).toMatch(
        /40 submitted: \d+ completed, \d+ compensated, 0 failed, 0 lost/,
      );
      expect(terminated(stdout, "k8s"), context).toBeGreaterThanOrEqual(1);
      expect(terminated(stdout, "sigkill"), context).toBeGreaterThanOrEqual(1);
      expect(terminated(stdout, "stop"), context).toBeGreaterThanOrEqual(1);
      expect(stdout, context).toMatch(
        /^In plain words: 40 runs, [1-9]\d* workers killed or frozen mid-run .*, 0 runs lost, 0 effects repeated\.$/m,
      );
      expect(code, context).toBe(0);

      // stdout is a pipe here: plain progress lines, no control characters but newlines.
      expect(stdout).toMatch(/^\s+\d+\.\ds {2}\d+\/40 runs done .*\(terminating workers\)$/m);
      expect(stdout).toMatch(/^\s+\d+\.\ds {2}40\/40 runs done .*\(checking every invariant\)$/m);
      expect(stdout).not.toMatch(CONTROL);
      // The store stays for a look at the runs afterwards.
      expect(existsSync(join(dir.path, "demo", "demo.db"))).toBe(true);
    } finally {
      dir.remove();
    }
  });
});

describe("the demo's progress line", () => {
  const progress = (
    elapsedMs: number,
    phase: ChaosProgress["phase"],
    ended = 0,
  ): ChaosProgress => ({
    phase,
    elapsedMs,
    submitted: 10,
    runs: 10,
    ended,
    terminations: { k8s: 1, sigkill: 2, stop: 3, rolling: 0, teardown: 0 },
    workersUp: 3,
  });
  const moves = { handedOff: 4, takenOver: 5 };
  const output = (isTTY: boolean, columns?: number) => {
    const writes: string[] = [];
    return { writes, write: (text: string) => writes.push(text), isTTY, columns };
  };

  it("without a terminal: a plain line at each new phase and every few seconds, no control characters", () => {
    const out = output(false);
    const line = new ProgressLine(out);
    line.update(progress(1_000, "chaos"), moves);
    line.update(progress(2_000, "chaos"), moves); // too soon: skipped
    line.update(progress(1_000 + PLAIN_EVERY_MS, "chaos", 4), moves);
    line.update(progress(1_500 + PLAIN_EVERY_MS, "checking", 10), moves); // a new phase
    line.end();
    expect(out.writes).toEqual([
      "   1.0s  0/10 runs done  k8s 1, SIGKILL 2, SIGSTOP 3  handoffs 4, takeovers 5  (terminating workers)\n",
      "   6.0s  4/10 runs done  k8s 1, SIGKILL 2, SIGSTOP 3  handoffs 4, takeovers 5  (terminating workers)\n",
      "   6.5s  10/10 runs done  k8s 1, SIGKILL 2, SIGSTOP 3  handoffs 4, takeovers 5  (checking every invariant)\n",
    ]);
    for (const text of out.writes) expect(text.slice(0, -1)).not.toMatch(CONTROL);
  });

  it("on a terminal: one line redrawn in place, cut to the width, cleared at the end", () => {
    const out = output(true, 40);
    const line = new ProgressLine(out);
    line.update(progress(1_000, "chaos"), moves);
    line.update(progress(2_000, "chaos", 3), moves);
    line.end();
    expect(out.writes).toEqual([
      "\r   1.0s  0/10 runs done  k8s 1, SIGKILL\u001b[K",
      "\r   2.0s  3/10 runs done  k8s 1, SIGKILL\u001b[K",
      "\r\u001b[K",
    ]);
  });
});
