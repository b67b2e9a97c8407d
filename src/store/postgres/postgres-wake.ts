import type pg from "pg";

/**
 * A LISTEN on one channel, on a dedicated connection outside the pool (a pooled connection
 * would be handed to other statements, and its LISTEN with it). When the connection drops —
 * a Postgres restart, a failover — it reconnects with backoff (100 ms doubling to 5 s)
 * and, once listening again, calls the listeners once: work may have arrived while nobody
 * listened. A silent network cut is found by a `SELECT 1` every `healthCheckMs` (the
 * client is expected to carry a query timeout), which fails and so reconnects. Notifications are only a shortcut;
 * the worker's poll finds work anyway, so a lost one costs latency, never a run.
 */
export class WakeListener {
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly connect: () => pg.Client,
    private readonly channel: string,
    private readonly healthCheckMs = 30_000,
  ) {}

  /** How many times the connection was (re)established; for tests and diagnostics. */
  connections = 0;

  add(listener: () => void): () => void {
    if (this.closed) return () => undefined;
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.stop();
    };
  }

  /** Ends the connection and stops reconnecting, for good. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.stop();
  }

  private start(): void {
    if (this.closed || this.client || this.retryTimer) return;
    const client = this.connect();
    this.client = client;
    client.on("error", (error) => this.dropped(client, error));
    client.on("end", () => this.dropped(client));
    client.on("notification", (message) => {
      if (message.channel === this.channel) this.emit();
    });
    client
      .connect()
      .then(() => client.query(`LISTEN "${this.channel}"`))
      .then(() => {
        if (this.client !== client) return;
        this.failures = 0;
        this.connections++;
        this.emit();
        this.healthTimer = setInterval(() => {
          client.query("SELECT 1").catch((error: unknown) => this.dropped(client, error));
        }, this.healthCheckMs);
        this.healthTimer.unref();
      })
      .catch((error: unknown) => this.dropped(client, error));
  }

  /** Called on every error or end of a client; its handlers stay, so no error goes unhandled. */
  private dropped(client: pg.Client, _error?: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.healthTimer);
    client.end().catch(() => undefined);
    if (this.closed || this.listeners.size === 0) return;
    const delay = Math.min(5_000, 100 * 2 ** this.failures++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.listeners.size > 0) this.start();
    }, delay);
    this.retryTimer.unref();
  }

  private async stop(): Promise<void> {
    clearInterval(this.healthTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await client.end().catch(() => undefined);
  }

  private emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear the wake-up.
      }
    }
  }
}
