import type Database from "better-sqlite3";

/**
 * Wake-ups across processes for SQLite, which has no notifications: `PRAGMA data_version`
 * changes whenever another connection commits, and reading it costs microseconds, so an
 * idle worker polls it every `intervalMs` and calls its listeners when it moved. The timer
 * runs only while someone listens, and never keeps the process alive.
 */
export class CommitWatcher {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private lastVersion = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly intervalMs: number,
  ) {}

  /** Calls `listener` after another connection commits; returns a function that stops it. */
  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      this.lastVersion = this.version();
      this.timer = setInterval(() => this.check(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Stops polling and forgets every listener (the database is closing). */
  close(): void {
    this.stop();
    this.listeners.clear();
  }

  private check(): void {
    if (!this.db.open) return;
    const version = this.version();
    if (version === this.lastVersion) return;
    this.lastVersion = version;
    for (const listener of this.listeners) listener();
  }

  private version(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
