/**
 * The statements of the PostgreSQL backend, built once per schema. Each store operation is
 * one statement: the state change, its event row and its `pg_notify` travel together in
 * data-modifying CTEs, so they commit (and notify) atomically without a transaction
 * round trip.
 *
 * Time is the database's: {@link NOW} is `statement_timestamp()` in epoch milliseconds,
 * constant within a statement (so one row's times agree) and read from the server's clock,
 * never the caller's.
 */

/** The database clock in epoch milliseconds, fixed for the duration of one statement. */
export const NOW = "(floor(extract(epoch FROM statement_timestamp()) * 1000))::bigint";

const TERMINAL = "('completed','failed','cancelled','compensated')";

/** The notification channel of a schema: Baton's in another schema never wake these workers. */
export function wakeChannel(schema: string): string {
  return `${schema}_wake`;
}

export function postgresStatements(schema: string) {
  // `schema` is a validated lowercase identifier, safe to quote and to inline.
  const t = (table: string) => `"${schema}".${table}`;
  const notify = (idColumn: string) => `pg_notify('${wakeChannel(schema)}', ${idColumn})`;
  const released = (set: string, delayParam: string) => `
    UPDATE ${t("runs")} SET ${set}, lease_owner = NULL, lease_expires_at = NULL,
      available_at = ${NOW} + ${delayParam}::bigint, updated_at = ${NOW}
    WHERE id = $1 AND fence = $2::bigint AND status = 'running'
    RETURNING id, fence, updated_at`;
  const releaseWithEvent = (set: string, kind: string) => `
    WITH released AS (${released(set, "$4")}),
    logged AS (
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, '${kind}', updated_at, $3, fence FROM released)
    SELECT ${notify("id")} FROM released`;

  return {
    now: `SELECT ${NOW} AS now`,

    // runs
    createRun: `
      WITH inserted AS (
        INSERT INTO ${t("runs")} (id, workflow, version, status, input, priority, available_at,
          created_at, updated_at)
        VALUES ($1, $2, $3::int, 'queued', $4, $5::int, ${NOW}, ${NOW}, ${NOW})
        ON CONFLICT (id) DO NOTHING
        RETURNING *),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, fence)
        SELECT id, 'created', created_at, 0 FROM inserted)
      SELECT inserted.*, ${notify("inserted.id")} AS notified FROM inserted`,
    getRun: `SELECT * FROM ${t("runs")} WHERE id = $1`,
    listRuns: `
      SELECT * FROM ${t("runs")}
      WHERE ($1::text IS NULL OR status = $1::text)
        AND ($2::text IS NULL OR workflow = $2::text)
        AND ($3::text IS NULL
          OR (created_at, id) < (SELECT created_at, id FROM ${t("runs")} WHERE id = $3::text))
      ORDER BY created_at DESC, id DESC
      LIMIT $4::int`,
    countRuns: `SELECT status, count(*) AS n FROM ${t("runs")} GROUP BY status`,
    cancelRun: `
      WITH cancelled AS (
        UPDATE ${t("runs")} SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,
          fence = fence + 1, completed_at = ${NOW}, updated_at = ${NOW}
        WHERE id = $1 AND status NOT IN ${TERMINAL}
        RETURNING *),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, fence)
        SELECT id, 'cancelled', updated_at, fence FROM cancelled)
      SELECT cancelled.*, ${notify("cancelled.id")} AS notified FROM cancelled`,

    // leases
    /**
     * $1 worker, $2 workflows, $3 limit, $4 lease ms. Two lookups, each walking its own
     * index in claim order and locking with SKIP LOCKED (concurrent claimers split the
     * queue instead of waiting on, or sharing, a row): runs that are due, and runs whose
     * lease expired (these count as resumed). The best `limit` of both are claimed; a
     * row locked but not chosen is let go at commit, a moment later.
     */
    claimRuns: `
      WITH due AS (
        SELECT id, status, priority, resumed AS resumed_first, created_at
        FROM ${t("runs")}
        WHERE status IN ('queued','sleeping') AND available_at <= ${NOW}
          AND workflow = ANY ($2::text[])
        ORDER BY priority DESC, resumed DESC, created_at, id
        LIMIT $3::int
        FOR UPDATE SKIP LOCKED),
      expired AS (
        SELECT id, status, priority, true AS resumed_first, created_at
        FROM ${t("runs")}
        WHERE status = 'running' AND lease_expires_at < ${NOW}
          AND workflow = ANY ($2::text[])
        ORDER BY priority DESC, created_at, id
        LIMIT $3::int
        FOR UPDATE SKIP LOCKED),
      candidates AS (
        SELECT * FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) c
        ORDER BY priority DESC, resumed_first DESC, created_at, id
        LIMIT $3::int),
      claimed AS (
        UPDATE ${t("runs")} r SET status = 'running', lease_owner = $1,
          lease_expires_at = ${NOW} + $4::bigint, fence = r.fence + 1, resumed = false,
          updated_at = ${NOW}
        FROM candidates c
        WHERE r.id = c.id
        RETURNING r.*, c.status = 'running' AS takeover, c.resumed_first),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
        SELECT id, CASE WHEN takeover THEN 'takeover' ELSE 'claimed' END, updated_at, $1, fence
        FROM claimed)
      SELECT * FROM claimed ORDER BY priority DESC, resumed_first DESC, created_at, id`,
    /** $1 worker, $2 run ids, $3 fences, $4 lease ms. Touches the worker row in the same statement. */
    renewLeases: `
      WITH beat AS (
        UPDATE ${t("workers")} SET heartbeat_at = ${NOW} WHERE id = $1)
      UPDATE ${t("runs")} r SET lease_expires_at = ${NOW} + $4::bigint
      FROM unnest($2::text[], $3::bigint[]) AS held (id, fence)
      WHERE r.id = held.id AND r.fence = held.fence AND r.lease_owner = $1 AND r.status = 'running'
      RETURNING r.id, r.fence`,
    /** $1 run, $2 fence, $3 status (also the event kind), $4 output, $5 error, $6 worker. */
    finishRun: `
      WITH finished AS (
        UPDATE ${t("runs")} SET status = $3, output = $4, error = $5, lease_owner = NULL,
          lease_expires_at = NULL, completed_at = ${NOW}, updated_at = ${NOW}
        WHERE id = $1 AND fence = $2::bigint AND status = 'running'
        RETURNING id, fence, updated_at)
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, $3, updated_at, $6, fence FROM finished`,
    /** $1 run, $2 fence, $3 worker, $4 delay ms: queued, resumed first, interruptions + 1. */
    handoff: releaseWithEvent(
      "status = 'queued', resumed = true, interruptions = interruptions + 1",
      "handoff",
    ),
    sleep: releaseWithEvent("status = 'sleeping'", "sleeping"),
    /** $1 run, $2 fence, $3 delay ms. A retry writes no event. */
    requeue: `
      WITH released AS (${released("status = 'queued', resumed = true", "$3")})
      SELECT ${notify("id")} FROM released`,
    /** Did this owner's handoff or sleep commit? (To settle a retry whose first try was lost.) */
    findEvent: `
      SELECT 1 FROM ${t("events")}
      WHERE run_id = $1 AND kind = $2 AND fence = $3::bigint AND worker_id = $4 LIMIT 1`,

    // journal
    loadJournal: `SELECT * FROM ${t("steps")} WHERE run_id = $1 ORDER BY seq`,
    getStep: `SELECT * FROM ${t("steps")} WHERE run_id = $1 AND seq = $2::int`,
    /**
     * $1 run, $2 fence, $3 worker, $4 seq, $5 name, $6 kind, $7 status, $8 output, $9 error,
     * $10 progress, $11 attempts, $12 started at. The run row is share-locked: a claim passes
     * over it while this write is in flight (SKIP LOCKED), and a write that comes after a
     * claim locked the row waits and is refused. A write can never commit under a fence
     * that has already moved on, unseen by the new owner.
     */
    writeStep: `
      INSERT INTO ${t("steps")} AS s (run_id, seq, name, kind, status, output, error, progress,
        attempts, fence, worker_id, started_at, updated_at)
      SELECT r.id, $4::int, $5, $6, $7, $8, $9, $10, $11::int, r.fence, $3, $12::bigint, ${NOW}
      FROM ${t("runs")} r
      WHERE r.id = $1 AND r.fence = $2::bigint AND r.status = 'running'
      FOR SHARE
      ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        progress = CASE WHEN excluded.status IN ('completed','failed') THEN NULL
                        ELSE coalesce(excluded.progress, s.progress) END,
        attempts = excluded.attempts, fence = excluded.fence, worker_id = excluded.worker_id,
        started_at = coalesce(excluded.started_at, s.started_at), updated_at = excluded.updated_at
      WHERE s.status NOT IN ('completed','failed') AND s.name = excluded.name`,

    // workers
    registerWorker: `
      INSERT INTO ${t("workers")} (id, state, host, pid, concurrency, started_at, heartbeat_at)
      VALUES ($1, $2, $3, $4::int, $5::int, ${NOW}, ${NOW})
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, heartbeat_at = excluded.heartbeat_at`,
    setWorkerState: `
      UPDATE ${t("workers")} SET state = $2::text, heartbeat_at = ${NOW},
        stopped_at = CASE WHEN $2::text = 'stopped' THEN ${NOW} ELSE stopped_at END
      WHERE id = $1`,
    listWorkers: `SELECT * FROM ${t("workers")} ORDER BY started_at DESC, id`,
    registerWorkflows: `
      INSERT INTO ${t("workflows")} (name, version, registered_at)
      SELECT name, version, ${NOW} FROM unnest($1::text[], $2::int[]) AS w (name, version)
      ON CONFLICT (name) DO UPDATE SET
        version = greatest(${t("workflows")}.version, excluded.version),
        registered_at = excluded.registered_at`,
    listWorkflows: `SELECT name, version FROM ${t("workflows")} ORDER BY name`,

    // events and shutdown reports
    appendEvent: `
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence, detail)
      VALUES ($1, $2, ${NOW}, $3, $4::bigint, $5)`,
    listEvents: `SELECT * FROM ${t("events")} WHERE run_id = $1 ORDER BY id`,
    saveShutdown: `INSERT INTO ${t("shutdowns")} (worker_id, at, report) VALUES ($1, ${NOW}, $2)`,
    latestShutdown: `
      SELECT worker_id, at, report FROM ${t("shutdowns")}
      WHERE worker_id = $1 ORDER BY id DESC LIMIT 1`,
  };
}

export type PostgresStatements = ReturnType<typeof postgresStatements>;
