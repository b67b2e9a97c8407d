/**
 * The demo's live progress line. On a terminal it is one line redrawn in place (`\r`, the
 * text, erase to the end of the line); anywhere else (CI logs, pipes) it is a plain line
 * at each change of phase and every few seconds, with no control characters.
 */
import type { ChaosPhase, ChaosProgress } from "../chaos/progress.js";

/** Runs moved from one worker to another so far, as the store records them. */
export type RunMoves = { handedOff: number; takenOver: number };

/** Where the line goes: a stream, or anything with `write` (a test's buffer). */
export type ProgressOutput = {
  write(text: string): unknown;
  isTTY?: boolean;
  /** The terminal's width; a longer line would wrap and break the redraw. */
  columns?: number;
};

/** Without a terminal, a line this often (by the run's own clock), besides each new phase. */
export const PLAIN_EVERY_MS = 5_000;

const PHASES: Record<ChaosPhase, string> = {
  starting: "starting the workers",
  chaos: "terminating workers",
  settling: "letting the last runs finish",
  stopping: "stopping the workers",
  checking: "checking every invariant",
};

/**
 * `  12.4s  84/150 runs done  k8s 2, SIGKILL 1, SIGSTOP 1  handoffs 5, takeovers 9  (terminating workers)`:
 * the figures first, so a narrow terminal cuts the phase off rather than them.
 */
export function formatDemoProgress(p: ChaosProgress, moves: RunMoves): string {
  const t = p.terminations;
  return (
    `${(p.elapsedMs / 1000).toFixed(1).padStart(6)}s  ${p.ended}/${p.runs} runs done  ` +
    `k8s ${t.k8s + t.rolling}, SIGKILL ${t.sigkill}, SIGSTOP ${t.stop}  ` +
    `handoffs ${moves.handedOff}, takeovers ${moves.takenOver}  (${PHASES[p.phase]})`
  );
}

/** Shows the latest progress: redrawn in place on a terminal, plain lines elsewhere. */
export class ProgressLine {
  private shown = false;
  private lastPhase: ChaosPhase | undefined;
  private lastPlainAt = -Infinity;

  constructor(private readonly out: ProgressOutput) {}

  update(p: ChaosProgress, moves: RunMoves): void {
    const line = formatDemoProgress(p, moves);
    if (this.out.isTTY) {
      const width = this.out.columns ? this.out.columns - 1 : Infinity;
      this.out.write(`\r${line.length > width ? line.slice(0, width) : line}\u001b[K`);
      this.shown = true;
      return;
    }
    if (p.phase === this.lastPhase && p.elapsedMs - this.lastPlainAt < PLAIN_EVERY_MS) return;
    this.lastPhase = p.phase;
    this.lastPlainAt = p.elapsedMs;
    this.out.write(`${line}\n`);
  }

  /** Clears the redrawn line, so what follows starts on a clean line. */
  end(): void {
    if (this.shown) this.out.write("\r\u001b[K");
    this.shown = false;
  }
}
