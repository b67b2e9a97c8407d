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

/**
 * A run its owner may still write to: owner writes (journal, renewals, finishing,
 * releasing) are fenced on this and on the fence. `compensating` runs are live while
 * owned: their owner journals and renews while it undoes what the run did. One given up
 * for compensation stays `compensating` but unowned, and no longer takes the old owner's
 * writes.
 */
const LIVE = "status IN ('running','compensating') AND lease_owner IS NOT NULL";
/** {@link LIVE} for a table alias: `r.${LIVE_R}`. */
const LIVE_R = "status IN ('running','compensating') AND r.lease_owner IS NOT NULL";

/**
 * How a journal write meets the entry already at its (run, seq): it takes the new status,
 * result and attempt count, keeps saved progress until the step ends, and never changes a
 * final entry or one of another name (the caller sees no row affected).
 */
const STEP_UPSERT = `ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        progress = CASE WHEN excluded.status IN ('completed','failed') THEN NULL
                        ELSE coalesce(excluded.progress, s.progress) END,
        attempts = excluded.attempts,
        idempotency_key = coalesce(excluded.idempotency_key, s.idempotency_key),
        fence = excluded.fence, worker_id = excluded.worker_id,
        started_at = coalesce(excluded.started_at, s.started_at), updated_at = excluded.updated_at
      WHERE s.status NOT IN ('completed','failed') AND s.name = excluded.name`;

/**
 * The columns of a journal entry, in the order of the JSON arrays a claim returns the
 * journal as (arrays rather than objects: a third cheaper to build, and to parse).
 */
export const JOURNAL_COLUMNS = [
  "run_id",
  "seq",
  "name",
  "kind",
  "status",
  "output",
  "error",
  "progress",
  "attempts",
  "idempotency_key",
  "fence",
  "worker_id",
  "started_at",
  "updated_at",
] as const;

/** The notification channel of a schema: Baton's in another schema never wake these workers. */
export function wakeChannel(schema: string): string {
  return `${schema}_wake`;
}

export function postgresStatements(schema: string) {
  // `schema` is a validated lowercase identifier, safe to quote and to inline.
  const t = (table: string) => `"${schema}".${table}`;
  const notify = (idColumn: string) => `pg_notify('${wakeChannel(schema)}', ${idColumn})`;
  const released = (set: string, delayParam: string, from = LIVE) => `
    UPDATE ${t("runs")} SET ${set}, lease_owner = NULL, lease_expires_at = NULL,
      available_at = ${NOW} + ${delayParam}::bigint, updated_at = ${NOW}
    WHERE id = $1 AND fence = $2::bigint AND ${from}
    RETURNING id, fence, updated_at`;
  const releaseWithEvent = (set: string, kind: string, from = LIVE) => `
    WITH released AS (${released(set, "$4", from)}),
    logged AS (
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, '${kind}', updated_at, $3, fence FROM released)
    SELECT ${notify("id")} FROM released`;

  /**
   * A batch of releases: $1 runs, $2 fences, $3 workers, $4 delays ms (one of each per
   * release). Rows are locked in id order first (every multi-row statement of this store
   * that waits for locks takes them in id order, so two of them cannot deadlock), then
   * each is released only if it is still live at its own fence. One notification for the
   * batch: the payload is not read, and any wake-up makes a worker claim.
   */
  const releaseBatch = (set: string, kind: string) => `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
        AS i (id, fence, worker_id, delay_ms)),
    locked AS MATERIALIZED (
      SELECT r.id FROM ${t("runs")} r
      WHERE (r.id, r.fence) IN (SELECT id, fence FROM input) AND r.${LIVE_R}
      ORDER BY r.id
      FOR UPDATE),
    released AS (
      UPDATE ${t("runs")} r SET ${set}, lease_owner = NULL, lease_expires_at = NULL,
        available_at = ${NOW} + i.delay_ms, updated_at = ${NOW}
      FROM input i JOIN locked l ON l.id = i.id
      WHERE r.id = i.id AND r.fence = i.fence AND r.${LIVE_R}
      RETURNING r.id, r.fence, r.updated_at, i.worker_id),
    logged AS (
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, '${kind}', updated_at, worker_id, fence FROM released ORDER BY id)
    SELECT released.id, (SELECT ${notify("min(id)")} FROM released) AS notified FROM released`;

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
    /**
     * `createRun` for a batch: $1 ids, $2 workflows, $3 versions, $4 inputs, $5 priorities
     * (distinct ids). Returns the runs inserted; an id already taken inserts nothing.
     */
    createRuns: `
      WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[])
          WITH ORDINALITY AS i (id, workflow, version, input, priority, n)),
      inserted AS (
        INSERT INTO ${t("runs")} (id, workflow, version, status, input, priority, available_at,
          created_at, updated_at)
        SELECT id, workflow, version, 'queued', input, priority, ${NOW}, ${NOW}, ${NOW}
        FROM input ORDER BY n
        ON CONFLICT (id) DO NOTHING
        RETURNING *),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, fence)
        SELECT id, 'created', created_at, 0 FROM inserted)
      SELECT inserted.*, (SELECT ${notify("min(id)")} FROM inserted) AS notified FROM inserted`,
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
    /**
     * $1 run, $2 compensate, $3 reason (the run's error when compensating). Plain: status
     * `cancelled`, ended. With compensate: `compensating` and unowned, due now, not ended,
     * for any worker to claim and undo (a run already compensating is left alone); events
     * `cancelled` then `compensating` (detail `cancelled`), in that order.
     */
    cancelRun: `
      WITH cancelled AS (
        UPDATE ${t("runs")} SET
          status = CASE WHEN $2::boolean THEN 'compensating' ELSE 'cancelled' END,
          error = CASE WHEN $2::boolean THEN $3::text ELSE error END,
          lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1,
          available_at = CASE WHEN $2::boolean THEN ${NOW} ELSE available_at END,
          completed_at = CASE WHEN $2::boolean THEN NULL ELSE ${NOW} END, updated_at = ${NOW}
        WHERE id = $1 AND status NOT IN ${TERMINAL}
          AND NOT ($2::boolean AND status = 'compensating')
        RETURNING *),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, fence, detail)
        SELECT c.id, e.kind, c.updated_at, c.fence, e.detail
        FROM cancelled c
        CROSS JOIN (VALUES (1, 'cancelled', NULL), (2, 'compensating', 'cancelled'))
          AS e (n, kind, detail)
        WHERE e.n = 1 OR $2::boolean
        ORDER BY e.n)
      SELECT cancelled.*, ${notify("cancelled.id")} AS notified FROM cancelled`,
    /** Did a cancel with compensation commit? (To settle a retry whose first try was lost.) */
    findCompensatingCancel: `
      SELECT 1 FROM ${t("events")}
      WHERE run_id = $1 AND kind = 'compensating' AND detail = 'cancelled' LIMIT 1`,
    /**
     * $1 workflows, $2 abandon-after ms, $3 reasons (one of each per rule, in rule order).
     * Per rule, a lateral lookup finds the runs of its workflow handed off (`queued`,
     * resumed, due for longer than abandon-after: index `runs_handed_off`) or orphaned
     * (`running`, lease expired for longer than that: index `runs_leased`), and locks them
     * with SKIP LOCKED: the reaper never waits on a worker's row or on another reaper, and
     * a row it skips is still abandoned at its next pass, unless someone took it up (then
     * it is no longer abandoned). A run matched by several rules of one workflow is reaped
     * once, with the first matching rule's reason, as rules applied in order would do.
     * Reaped runs become `compensating`, unowned, due now, with a new fence, an `abandoned`
     * event (with that fence) and a wake-up.
     */
    reapAbandoned: `
      WITH rules AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY
          AS rule (workflow, after_ms, reason, n)),
      abandoned AS (
        SELECT DISTINCT ON (a.id) a.id, rule.reason
        FROM rules rule
        CROSS JOIN LATERAL (
          SELECT id FROM ${t("runs")}
          WHERE workflow = rule.workflow
            AND ((status = 'queued' AND resumed AND available_at < ${NOW} - rule.after_ms)
              OR (status = 'running' AND lease_expires_at < ${NOW} - rule.after_ms))
          FOR UPDATE SKIP LOCKED) a
        ORDER BY a.id, rule.n),
      reaped AS (
        UPDATE ${t("runs")} r SET status = 'compensating', error = a.reason, lease_owner = NULL,
          lease_expires_at = NULL, fence = r.fence + 1, available_at = ${NOW}, updated_at = ${NOW}
        FROM abandoned a
        WHERE r.id = a.id
        RETURNING r.id, r.fence, r.updated_at),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, fence)
        SELECT id, 'abandoned', updated_at, fence FROM reaped)
      SELECT id, ${notify("id")} AS notified FROM reaped`,

    // leases
    /**
     * $1 worker, $2 workflows, $3 limit, $4 lease ms. Three lookups, each walking its own
     * index in claim order and locking with SKIP LOCKED (concurrent claimers split the
     * queue instead of waiting on, or sharing, a row): runs that are due, running runs
     * whose lease expired (these count as resumed), and compensating runs that are
     * unowned and due or whose lease expired (all count as resumed: work under way, as in
     * the SQLite backend). The best `limit` of the three are claimed; a row locked but not
     * chosen is let go at commit, a moment later. A claimed compensating run stays
     * `compensating`; an expired lease taken over is a `takeover`.
     */
    claimRuns: `
      WITH due AS (
        SELECT id, priority, resumed AS resumed_first, created_at, false AS takeover,
          lease_owner AS old_owner, lease_expires_at AS old_expires_at, fence AS old_fence,
          xmin::text AS locked_version
        FROM ${t("runs")}
        WHERE status IN ('queued','sleeping') AND available_at <= ${NOW}
          AND workflow = ANY ($2::text[])
        ORDER BY priority DESC, resumed DESC, created_at, id
        LIMIT $3::int
        FOR UPDATE SKIP LOCKED),
      expired AS (
        SELECT id, priority, true AS resumed_first, created_at, true AS takeover,
          lease_owner AS old_owner, lease_expires_at AS old_expires_at, fence AS old_fence,
          xmin::text AS locked_version
        FROM ${t("runs")}
        WHERE status = 'running' AND lease_expires_at < ${NOW}
          AND workflow = ANY ($2::text[])
        ORDER BY priority DESC, created_at, id
        LIMIT $3::int
        FOR UPDATE SKIP LOCKED),
      compensating AS (
        SELECT id, priority, true AS resumed_first, created_at,
          lease_owner IS NOT NULL AS takeover, lease_owner AS old_owner, lease_expires_at AS old_expires_at, fence AS old_fence,
          xmin::text AS locked_version
        FROM ${t("runs")}
        WHERE status = 'compensating'
          AND ((lease_owner IS NULL AND available_at <= ${NOW})
            OR (lease_owner IS NOT NULL AND lease_expires_at < ${NOW}))
          AND workflow = ANY ($2::text[])
        ORDER BY priority DESC, created_at, id
        LIMIT $3::int
        FOR UPDATE SKIP LOCKED),
      candidates AS (
        SELECT * FROM (
          SELECT * FROM due UNION ALL SELECT * FROM expired UNION ALL SELECT * FROM compensating
        ) c
        ORDER BY priority DESC, resumed_first DESC, created_at, id
        LIMIT $3::int),
      claimed AS (
        UPDATE ${t("runs")} r SET
          status = CASE WHEN r.status = 'compensating' THEN 'compensating' ELSE 'running' END,
          lease_owner = $1, lease_expires_at = ${NOW} + $4::bigint, fence = r.fence + 1,
          resumed = false, updated_at = ${NOW}
        FROM candidates c
        WHERE r.id = c.id
        RETURNING r.*, c.takeover, c.resumed_first, c.old_owner, c.old_expires_at, c.old_fence,
          c.locked_version),
      -- The version of each claimed row in this statement's snapshot (a plain read does not
      -- follow a concurrent update the way a row lock does).
      seen AS (
        SELECT id, xmin::text AS seen_version FROM ${t("runs")}
        WHERE id IN (SELECT id FROM candidates)),
      logged AS (
        -- A takeover records first the expiry that allowed it (old owner, old fence, at the
        -- old lease's end), then the takeover: one INSERT, rows in that order.
        INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
        SELECT run_id, kind, at, worker_id, fence FROM (
          SELECT id AS run_id, 'lease-expired' AS kind, old_expires_at AS at,
            old_owner AS worker_id, old_fence AS fence, 0 AS ord
          FROM claimed WHERE takeover
          UNION ALL
          SELECT id, CASE WHEN takeover THEN 'takeover' ELSE 'claimed' END, updated_at, $1, fence, 1
          FROM claimed) e
        ORDER BY run_id, ord)
      -- The run's last event before this claim (this statement's own rows are not visible):
      -- a handoff tells how long the run waited to be resumed.
      --
      -- The journal of a run that was handed off, put to sleep or given up for compensation
      -- (not a takeover), read in this statement when that is safe: the row we locked is the
      -- version our snapshot sees. No owner can write while a run is released, and every
      -- write of an earlier owner committed before the release did (the release waits for a
      -- write's share lock; a write that waits for the release is refused), so the snapshot
      -- that sees the release holds them all. When the row changed after our snapshot was
      -- taken, or for a takeover (a live owner's write may commit just before our lock,
      -- after our snapshot), \`journal\` is null and the store reads it after the claim.
      SELECT claimed.*, last.kind AS last_event, last.at AS last_event_at, ${NOW} AS claimed_at,
        CASE WHEN claimed.fence = 1 THEN '[]'
          WHEN NOT claimed.takeover AND seen.seen_version = claimed.locked_version
            THEN coalesce(steps.journal, '[]') END AS journal
      FROM claimed
      LEFT JOIN seen ON seen.id = claimed.id
      LEFT JOIN LATERAL (
        SELECT kind, at FROM ${t("events")} e WHERE e.run_id = claimed.id ORDER BY e.id DESC LIMIT 1
      ) last ON true
      LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(${JOURNAL_COLUMNS.map((c) => `s.${c}`).join(", ")})
          ORDER BY s.seq)::text AS journal
        FROM ${t("steps")} s
        WHERE s.run_id = claimed.id AND claimed.fence > 1 AND NOT claimed.takeover
      ) steps ON true
      ORDER BY priority DESC, resumed_first DESC, created_at, id`,
    /** $1 worker, $2 run ids, $3 fences, $4 lease ms. Touches the worker row in the same statement. */
    renewLeases: `
      WITH beat AS (
        UPDATE ${t("workers")} SET heartbeat_at = ${NOW} WHERE id = $1),
      held AS (SELECT * FROM unnest($2::text[], $3::bigint[]) AS held (id, fence)),
      -- Locked in id order, as the batched writes lock them: no deadlock between the two.
      locked AS MATERIALIZED (
        SELECT r.id FROM ${t("runs")} r
        WHERE (r.id, r.fence) IN (SELECT id, fence FROM held) AND r.lease_owner = $1
          AND r.status IN ('running','compensating')
        ORDER BY r.id
        FOR UPDATE)
      UPDATE ${t("runs")} r SET lease_expires_at = ${NOW} + $4::bigint
      FROM held JOIN locked ON locked.id = held.id
      WHERE r.id = held.id AND r.fence = held.fence AND r.lease_owner = $1
        AND r.status IN ('running','compensating')
      RETURNING r.id, r.fence`,
    /**
     * $1 run, $2 fence, $3 status (also the event kind), $4 output, $5 error, $6 worker.
     * A null error keeps the recorded one: a compensated run keeps why it was compensated.
     */
    finishRun: `
      WITH finished AS (
        UPDATE ${t("runs")} SET status = $3, output = $4, error = coalesce($5, error),
          lease_owner = NULL, lease_expires_at = NULL, completed_at = ${NOW}, updated_at = ${NOW}
        WHERE id = $1 AND fence = $2::bigint AND ${LIVE}
        RETURNING id, fence, updated_at)
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, $3, updated_at, $6, fence FROM finished`,
    /**
     * `finishRun` for a batch: $1 runs, $2 fences, $3 statuses, $4 outputs, $5 errors,
     * $6 workers (distinct runs). Rows are locked in id order first (see `releaseBatch`).
     * Returns the runs finished.
     */
    finishRuns: `
      WITH input AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
          $6::text[]) AS i (id, fence, status, output, error, worker_id)),
      locked AS MATERIALIZED (
        SELECT r.id FROM ${t("runs")} r
        WHERE (r.id, r.fence) IN (SELECT id, fence FROM input) AND r.${LIVE_R}
        ORDER BY r.id
        FOR UPDATE),
      finished AS (
        UPDATE ${t("runs")} r SET status = i.status, output = i.output,
          error = coalesce(i.error, r.error), lease_owner = NULL, lease_expires_at = NULL,
          completed_at = ${NOW}, updated_at = ${NOW}
        FROM input i JOIN locked l ON l.id = i.id
        WHERE r.id = i.id AND r.fence = i.fence AND r.${LIVE_R}
        RETURNING r.id, r.fence, r.updated_at, i.status, i.worker_id),
      logged AS (
        INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
        SELECT id, status, updated_at, worker_id, fence FROM finished ORDER BY id)
      SELECT id FROM finished`,
    /**
     * $1 run, $2 fence, $3 error, $4 worker. From `running` only: `compensating` under the
     * same lease (the owner goes on to run the compensations), recording why.
     */
    beginCompensation: `
      WITH begun AS (
        UPDATE ${t("runs")} SET status = 'compensating', error = $3, updated_at = ${NOW}
        WHERE id = $1 AND fence = $2::bigint AND status = 'running'
        RETURNING id, fence, updated_at)
      INSERT INTO ${t("events")} (run_id, kind, at, worker_id, fence)
      SELECT id, 'compensating', updated_at, $4, fence FROM begun`,
    /** $1 run, $2 fence, $3 worker, $4 delay ms: queued, resumed first, interruptions + 1. */
    handoff: releaseWithEvent(
      "status = 'queued', resumed = true, interruptions = interruptions + 1",
      "handoff",
    ),
    sleep: releaseWithEvent("status = 'sleeping'", "sleeping"),
    /**
     * $1 run, $2 fence, $3 worker, $4 delay ms. `compensating` and unowned, for any worker
     * to claim and undo: a running run (shutdown in mode compensate), or one whose owner
     * stops in the middle of its compensations.
     */
    toCompensate: releaseWithEvent("status = 'compensating'", "compensating"),
    /** The batched forms of `handoff`, `sleep` and `toCompensate` (see `releaseBatch`). */
    handoffs: releaseBatch(
      "status = 'queued', resumed = true, interruptions = r.interruptions + 1",
      "handoff",
    ),
    sleeps: releaseBatch("status = 'sleeping'", "sleeping"),
    toCompensateBatch: releaseBatch("status = 'compensating'", "compensating"),
    /** $1 run, $2 fence, $3 delay ms. A retry writes no event. */
    requeue: `
      WITH released AS (${released("status = 'queued', resumed = true", "$3")})
      SELECT ${notify("id")} FROM released`,
    /**
     * Did this owner's handoff, sleep, finish or compensating transition commit? (To settle
     * a retry whose first try was lost.)
     */
    findEvent: `
      SELECT 1 FROM ${t("events")}
      WHERE run_id = $1 AND kind = $2 AND fence = $3::bigint AND worker_id = $4 LIMIT 1`,

    // journal
    loadJournal: `SELECT * FROM ${t("steps")} WHERE run_id = $1 ORDER BY seq`,
    /** The journals of several runs ($1 ids), in one read. */
    loadJournals: `SELECT * FROM ${t("steps")} WHERE run_id = ANY ($1::text[]) ORDER BY run_id, seq`,
    getStep: `SELECT * FROM ${t("steps")} WHERE run_id = $1 AND seq = $2::int`,
    /**
     * $1 run, $2 fence, $3 worker, $4 seq, $5 name, $6 kind, $7 status, $8 output, $9 error,
     * $10 progress, $11 attempts, $12 started at, $13 idempotency key (a null one keeps the
     * recorded key: the intent's key survives its completion). The run row is share-locked:
     * a claim passes over it while this write is in flight (SKIP LOCKED), and a write that
     * comes after a claim locked the row waits and is refused. A write can never commit
     * under a fence that has already moved on, unseen by the new owner.
     */
    writeStep: `
      INSERT INTO ${t("steps")} AS s (run_id, seq, name, kind, status, output, error, progress,
        attempts, idempotency_key, fence, worker_id, started_at, updated_at)
      SELECT r.id, $4::int, $5, $6, $7, $8, $9, $10, $11::int, $13, r.fence, $3, $12::bigint,
        ${NOW}
      FROM ${t("runs")} r
      WHERE r.id = $1 AND r.fence = $2::bigint AND r.status IN ('running','compensating')
        AND r.lease_owner IS NOT NULL
      FOR SHARE
      ${STEP_UPSERT}`,
    /**
     * `writeStep` for a batch, one array per parameter of `writeStep` (distinct run and seq
     * pairs). Each write is checked on its own: its run must be live at its fence. The runs
     * are share-locked in id order first (see `releaseBatch`), as `writeStep` locks its run.
     * Returns the (run, seq) of each write that took effect.
     */
    writeSteps: `
      WITH input AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[],
          $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::bigint[],
          $13::text[])
          AS i (run_id, fence, worker_id, seq, name, kind, status, output, error, progress,
            attempts, started_at, idempotency_key)),
      owned AS MATERIALIZED (
        SELECT r.id, r.fence FROM ${t("runs")} r
        WHERE (r.id, r.fence) IN (SELECT run_id, fence FROM input) AND r.${LIVE_R}
        ORDER BY r.id
        FOR SHARE)
      INSERT INTO ${t("steps")} AS s (run_id, seq, name, kind, status, output, error, progress,
        attempts, idempotency_key, fence, worker_id, started_at, updated_at)
      SELECT i.run_id, i.seq, i.name, i.kind, i.status, i.output, i.error, i.progress,
        i.attempts, i.idempotency_key, o.fence, i.worker_id, i.started_at, ${NOW}
      FROM input i JOIN owned o ON o.id = i.run_id AND o.fence = i.fence
      ORDER BY i.run_id, i.seq
      ${STEP_UPSERT}
      RETURNING s.run_id, s.seq`,

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
