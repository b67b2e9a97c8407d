import type Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";

const TERMINAL_SQL = "('completed','failed','cancelled','compensated')";

/**
 * The statements of the SQLite backend, prepared once per connection. Every owner write is
 * conditional on the writer's fence and on the run being live (`running` or `compensating`,
 * with an owner); `fencing: false` drops the fence condition, for tests only.
 */
type StatementName =
  | "insertRun"
  | "getRun"
  | "listRuns"
  | "countRuns"
  | "cancelRun"
  | "reapAbandoned"
  | "anyClaimable"
  | "claimCandidates"
  | "claimOne"
  | "renewLeases"
  | "finishRun"
  | "handoff"
  | "sleep"
  | "toCompensate"
  | "beginCompensation"
  | "requeue"
  | "loadJournal"
  | "writeStep"
  | "registerWorker"
  | "setWorkerState"
  | "touchWorker"
  | "listWorkers"
  | "registerWorkflow"
  | "listWorkflows"
  | "insertEvent"
  | "listEvents"
  | "saveShutdown"
  | "latestShutdown";

export type SqliteStatements = Record<StatementName, Statement>;

export function prepareStatements(db: Database.Database, fencing: boolean): SqliteStatements {
  // Every owner write is conditional on the writer's fence, while the run is live.
  const fenced = fencing ? "fence = @fence" : "1 = 1";
  // A run given up for compensation stays `compensating` but has no owner: not live.
  const live = "status IN ('running','compensating') AND lease_owner IS NOT NULL";
  const claimable = `
    workflow IN (SELECT value FROM json_each(@workflows))
    AND (((status IN ('queued','sleeping') OR (status = 'compensating' AND lease_owner IS NULL))
          AND available_at <= @now)
      OR (status IN ('running','compensating') AND lease_owner IS NOT NULL AND lease_expires_at < @now))`;
  return {
    insertRun: db.prepare(`
      INSERT INTO runs (id, workflow, version, status, input, priority, available_at, created_at, updated_at)
      VALUES (@id, @workflow, @version, 'queued', @input, @priority, @now, @now, @now)
      ON CONFLICT (id) DO NOTHING`),
    getRun: db.prepare(`SELECT * FROM runs WHERE id = ?`),
    listRuns: db.prepare(`
      SELECT * FROM runs
      WHERE (@status IS NULL OR status = @status)
        AND (@workflow IS NULL OR workflow = @workflow)
        AND (@before IS NULL OR (created_at, id) < (SELECT created_at, id FROM runs WHERE id = @before))
      ORDER BY created_at DESC, id DESC LIMIT @limit`),
    countRuns: db.prepare(`SELECT status, count(*) AS n FROM runs GROUP BY status`),
    cancelRun: db.prepare(`
      UPDATE runs SET status = CASE WHEN @compensate = 1 THEN 'compensating' ELSE 'cancelled' END,
        error = CASE WHEN @compensate = 1 THEN @reason ELSE error END,
        lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1, available_at = @now,
        completed_at = CASE WHEN @compensate = 1 THEN NULL ELSE @now END, updated_at = @now
      WHERE id = @id AND status NOT IN ${TERMINAL_SQL}
        AND NOT (@compensate = 1 AND status = 'compensating')
      RETURNING *`),
    reapAbandoned: db.prepare(`
      UPDATE runs SET status = 'compensating', error = @reason, lease_owner = NULL,
        lease_expires_at = NULL, fence = fence + 1, available_at = @now, updated_at = @now
      WHERE workflow = @workflow
        AND ((status = 'queued' AND resumed = 1 AND available_at < @before)
          OR (status = 'running' AND lease_expires_at < @before))
      RETURNING id, fence`),
    anyClaimable: db.prepare(`SELECT 1 FROM runs WHERE ${claimable} LIMIT 1`),
    claimCandidates: db.prepare(`
      SELECT id, CASE WHEN status = 'compensating' AND lease_owner IS NOT NULL
                      THEN 'compensating-expired' ELSE status END AS status,
        lease_owner, lease_expires_at, fence,
        (SELECT kind FROM events e WHERE e.run_id = runs.id ORDER BY e.id DESC LIMIT 1) AS last_event,
        (SELECT at FROM events e WHERE e.run_id = runs.id ORDER BY e.id DESC LIMIT 1) AS last_event_at
      FROM runs WHERE ${claimable}
      ORDER BY priority DESC, (resumed = 1 OR status IN ('running','compensating')) DESC, created_at, id
      LIMIT @limit`),
    claimOne: db.prepare(`
      UPDATE runs SET status = CASE WHEN status = 'compensating' THEN 'compensating' ELSE 'running' END,
        lease_owner = @workerId, lease_expires_at = @expiresAt,
        fence = fence + 1, resumed = 0, updated_at = @now
      WHERE id = @id RETURNING *`),
    renewLeases: db.prepare(`
      UPDATE runs SET lease_expires_at = @expiresAt
      WHERE lease_owner = @workerId AND ${live}
        AND (id, fence) IN (SELECT value ->> 0, value ->> 1 FROM json_each(@pairs))
      RETURNING id, fence`),
    finishRun: db.prepare(`
      UPDATE runs SET status = @status, output = @output, error = coalesce(@error, error), lease_owner = NULL,
        lease_expires_at = NULL, completed_at = @now, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    handoff: db.prepare(`
      UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, resumed = 1,
        interruptions = interruptions + 1, available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    sleep: db.prepare(`
      UPDATE runs SET status = 'sleeping', lease_owner = NULL, lease_expires_at = NULL,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    toCompensate: db.prepare(`
      UPDATE runs SET status = 'compensating', lease_owner = NULL, lease_expires_at = NULL,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    beginCompensation: db.prepare(`
      UPDATE runs SET status = 'compensating', error = @error, updated_at = @now
      WHERE id = @id AND ${fenced} AND status = 'running'`),
    requeue: db.prepare(`
      UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, resumed = 1,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    loadJournal: db.prepare(`SELECT * FROM steps WHERE run_id = ? ORDER BY seq`),
    writeStep: db.prepare(`
      INSERT INTO steps (run_id, seq, name, kind, status, output, error, progress, attempts,
        idempotency_key, fence, worker_id, started_at, updated_at)
      SELECT @runId, @seq, @name, @kind, @status, @output, @error, @progress, @attempts,
        @idempotencyKey, @fence, @workerId, @startedAt, @now
      FROM runs WHERE id = @runId AND ${fenced} AND ${live}
      ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        progress = CASE WHEN excluded.status IN ('completed','failed') THEN NULL
                        ELSE coalesce(excluded.progress, steps.progress) END,
        attempts = excluded.attempts, idempotency_key = coalesce(excluded.idempotency_key, steps.idempotency_key),
        fence = excluded.fence, worker_id = excluded.worker_id,
        started_at = coalesce(excluded.started_at, steps.started_at), updated_at = excluded.updated_at
      WHERE steps.status NOT IN ('completed','failed') AND steps.name = excluded.name`),
    registerWorker: db.prepare(`
      INSERT INTO workers (id, state, host, pid, concurrency, started_at, heartbeat_at)
      VALUES (@id, @state, @host, @pid, @concurrency, @now, @now)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, heartbeat_at = excluded.heartbeat_at`),
    setWorkerState: db.prepare(`
      UPDATE workers SET state = @state, heartbeat_at = @now,
        stopped_at = CASE WHEN @state = 'stopped' THEN @now ELSE stopped_at END
      WHERE id = @id`),
    touchWorker: db.prepare(`UPDATE workers SET heartbeat_at = @now WHERE id = @id`),
    listWorkers: db.prepare(`SELECT * FROM workers ORDER BY started_at DESC`),
    registerWorkflow: db.prepare(`
      INSERT INTO workflows (name, version, registered_at) VALUES (@name, @version, @now)
      ON CONFLICT (name) DO UPDATE SET version = max(version, excluded.version), registered_at = excluded.registered_at`),
    listWorkflows: db.prepare(`SELECT name, version FROM workflows ORDER BY name`),
    insertEvent: db.prepare(`
      INSERT INTO events (run_id, kind, at, worker_id, fence, detail)
      VALUES (@runId, @kind, @at, @workerId, @fence, @detail)`),
    listEvents: db.prepare(`SELECT * FROM events WHERE run_id = ? ORDER BY id`),
    saveShutdown: db.prepare(
      `INSERT INTO shutdowns (worker_id, at, report) VALUES (@workerId, @at, @report)`,
    ),
    latestShutdown: db.prepare(
      `SELECT * FROM shutdowns WHERE worker_id = ? ORDER BY id DESC LIMIT 1`,
    ),
  };
}
