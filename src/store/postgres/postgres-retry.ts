import type pg from "pg";

/**
 * Which failures of a statement are worth trying again, and what a second try means.
 *
 * Three kinds of failure:
 * - `not-applied`: the statement certainly did not commit — the connection could not be
 *   opened (the server is restarting: ECONNREFUSED, 57P03), or the server rolled it back
 *   (serialization failure 40001, deadlock 40P01). Any statement may be sent again.
 * - `unknown`: the connection broke while the statement was in flight (57P01 admin
 *   shutdown, 08006, ECONNRESET, "Connection terminated"). It may have committed and only
 *   the answer was lost. Only statements whose second application is harmless are sent
 *   again (see `Replay`).
 * - `fatal`: anything else (a constraint, a bug, bad input); thrown at once.
 */
export type FailureKind = "not-applied" | "unknown" | "fatal";

/**
 * Whether a statement may be sent again after an `unknown` outcome:
 * - `idempotent`: reads, renewals, upserts; applying twice equals applying once. Also
 *   `reapAbandoned`: a reaped run no longer matches (it is `compensating`), so a second
 *   pass cannot reap it, bump its fence or log `abandoned` twice; it only reaps runs that
 *   became abandoned in between, as the next pass would. What a lost answer costs is the
 *   list: the runs the first try reaped are missing from the ids returned (their
 *   `abandoned` events record them).
 * - `fenced`: conditional writes whose refusal is ambiguous after a lost answer. A re-sent
 *   fenced write either applies (the first did not) or is refused (the first did, or the
 *   lease moved on); the store then asks the database which of the two it was, so a lost
 *   answer never turns into a false "lease lost". The owner writes — `writeStep`,
 *   `completeRun`, `failRun`, `markCompensated` (the finish statement), `beginCompensation`,
 *   and `releaseRun` for each reason (handoff, sleep, retry, compensate) — each look for
 *   the first try's trace: the event it wrote with this lease's fence and worker, or the
 *   journal entry, or (retry) the run still queued at this fence. `beginCompensation` and
 *   a release for compensation write the same `compensating` event; while the run is still
 *   at this fence its lease tells which committed (kept, or cleared). `cancelRun` is fenced
 *   too, on the run's state: it answers with the run if it is `cancelled` (or, with
 *   compensate, `compensating` with a `compensating` event whose detail is `cancelled`).
 * - `once`: claims and appends; re-sending could claim or append twice, so an `unknown`
 *   failure is thrown. (A claim whose answer was lost leaves its runs leased to a worker
 *   that does not know it; they are taken over when that lease expires.)
 */
export type Replay = "idempotent" | "fenced" | "once";

const NOT_APPLIED_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "57P03", // cannot_connect_now: starting up or shutting down
  "53300", // too_many_connections
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

const UNKNOWN_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "57P01", // admin_shutdown: the server is stopping
  "57P02", // crash_shutdown
  "08000", // connection_exception
  "08003", // connection_does_not_exist
  "08006", // connection_failure
]);

const UNKNOWN_MESSAGES =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|terminating connection/i;

/** Classifies a failure of a statement that was sent (`connecting` false) or of opening a connection. */
export function classifyFailure(error: unknown, connecting: boolean): FailureKind {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : "";
  const transient =
    (typeof code === "string" && (NOT_APPLIED_CODES.has(code) || UNKNOWN_CODES.has(code))) ||
    UNKNOWN_MESSAGES.test(message) ||
    /timeout exceeded when trying to connect/i.test(message);
  if (!transient) return "fatal";
  // Nothing was sent while a connection was being opened.
  if (connecting) return "not-applied";
  return typeof code === "string" && NOT_APPLIED_CODES.has(code) ? "not-applied" : "unknown";
}

/** True when the error leaves the connection unusable, so the pool must discard it. */
export function breaksConnection(error: unknown): boolean {
  const kind = classifyFailure(error, false);
  const code = (error as { code?: unknown } | null)?.code;
  return kind === "unknown" || code === "57P03";
}

/** Backoff before try `attempt` (1-based): 25, 50, 100, ... ms, at most 250 ms, with jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(250, 25 * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

/**
 * Checks a connection out of `pool` for `use` and retries transient failures with backoff
 * for up to `budgetMs`, as `replay` allows (see {@link Replay}); stops retrying once
 * `stop()` is true (the store is closing).
 */
export async function withPooledClient<T>(
  pool: pg.Pool,
  use: (client: pg.PoolClient) => Promise<T>,
  options: { replay: Replay; budgetMs: number; stop: () => boolean },
): Promise<T> {
  const giveUpAt = Date.now() + options.budgetMs;
  for (let attempt = 1; ; attempt++) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      if (classifyFailure(error, true) === "fatal" || Date.now() >= giveUpAt) throw error;
      await sleep(backoffMs(attempt));
      continue;
    }
    // A checked-out connection has no pool error handler; errors between statements
    // must not crash the process (they also fail the statement, handled below).
    const onError = () => undefined;
    client.on("error", onError);
    try {
      const result = await use(client);
      client.off("error", onError);
      client.release();
      return result;
    } catch (error) {
      if (breaksConnection(error)) {
        // Discarded by the pool; the handler stays for the errors a dying socket may still emit.
        client.release(error as Error);
      } else {
        client.off("error", onError);
        client.release();
      }
      const kind = classifyFailure(error, false);
      const retry = kind === "not-applied" || (kind === "unknown" && options.replay !== "once");
      if (!retry || Date.now() >= giveUpAt || options.stop()) throw error;
      await sleep(backoffMs(attempt));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
