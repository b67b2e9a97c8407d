/**
 * Counts, for the progress line, the runs that moved between workers: `handoff` events (a
 * draining worker let the run go at a step boundary) and `takeover` events (another worker
 * claimed it after its owner's lease expired: a SIGKILL or a SIGSTOP). It reads the demo's
 * store through its own connection; a run's events are read again only while it is live.
 */
import { openHarnessStore } from "../chaos/chaos-store.js";
import { TERMINAL_STATUSES, type Store } from "../store/store.js";
import type { RunMoves } from "./demo-progress.js";

export class RunMovesCounter {
  /** The latest count; refreshed in the background by `refresh`. */
  moves: RunMoves = { handedOff: 0, takenOver: 0 };
  private firstTakenOver: string | undefined;
  private firstHandedOff: string | undefined;
  private store: Store | undefined;
  private readonly ended = new Map<string, RunMoves>();
  private counting: Promise<void> | undefined;

  constructor(private readonly storeUrl: string) {}

  /** A run that moved (taken over, else handed off): one worth looking at afterwards. */
  get example(): string | undefined {
    return this.firstTakenOver ?? this.firstHandedOff;
  }

  /** Starts a count unless one is under way. Call it only once the store exists. */
  refresh(): void {
    this.counting ??= this.count()
      .catch(() => undefined) // the next refresh tries again; the report has the real figures
      .finally(() => (this.counting = undefined));
  }

  async close(): Promise<void> {
    await this.counting;
    await this.store?.close();
  }

  private async count(): Promise<void> {
    this.store ??= openHarnessStore(this.storeUrl);
    const runs = await this.store.listRuns({ limit: 1_000_000 });
    const total: RunMoves = { handedOff: 0, takenOver: 0 };
    for (const run of runs) {
      let moves = this.ended.get(run.id);
      if (!moves) {
        const events = await this.store.listEvents(run.id);
        moves = {
          handedOff: events.filter((e) => e.kind === "handoff").length,
          takenOver: events.filter((e) => e.kind === "takeover").length,
        };
        if (TERMINAL_STATUSES.includes(run.status)) this.ended.set(run.id, moves);
      }
      if (moves.takenOver > 0) this.firstTakenOver ??= run.id;
      if (moves.handedOff > 0) this.firstHandedOff ??= run.id;
      total.handedOff += moves.handedOff;
      total.takenOver += moves.takenOver;
    }
    this.moves = total;
  }
}
