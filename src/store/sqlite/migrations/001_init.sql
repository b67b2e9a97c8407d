-- Baton schema for SQLite, version 1. Times are epoch milliseconds.

CREATE TABLE runs (
  id               TEXT PRIMARY KEY,
  workflow         TEXT    NOT NULL,
  version          INTEGER NOT NULL,
  status           TEXT    NOT NULL,
  input            TEXT,
  output           TEXT,
  error            TEXT,
  priority         INTEGER NOT NULL DEFAULT 0,
  fence            INTEGER NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  available_at     INTEGER NOT NULL,
  interruptions    INTEGER NOT NULL DEFAULT 0,
  resumed          INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  completed_at     INTEGER
) STRICT;

-- What the claim statement scans: ready runs in claim order.
CREATE INDEX runs_ready ON runs (status, available_at);
CREATE INDEX runs_lease ON runs (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE steps (
  run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  name        TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  output      TEXT,
  error       TEXT,
  progress    TEXT,
  attempts    INTEGER NOT NULL DEFAULT 0,
  fence       INTEGER NOT NULL,
  worker_id   TEXT    NOT NULL,
  started_at  INTEGER,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE workers (
  id           TEXT PRIMARY KEY,
  state        TEXT    NOT NULL,
  host         TEXT    NOT NULL,
  pid          INTEGER NOT NULL,
  concurrency  INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  stopped_at   INTEGER
) STRICT;

CREATE TABLE events (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id    TEXT    NOT NULL,
  kind      TEXT    NOT NULL,
  at        INTEGER NOT NULL,
  worker_id TEXT,
  fence     INTEGER,
  detail    TEXT
) STRICT;

CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE shutdowns (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  worker_id TEXT    NOT NULL,
  at        INTEGER NOT NULL,
  report    TEXT    NOT NULL
) STRICT;

CREATE INDEX shutdowns_worker ON shutdowns (worker_id, id);

-- Workflows some worker of this store can run, so a client can start one by name.
CREATE TABLE workflows (
  name          TEXT PRIMARY KEY,
  version       INTEGER NOT NULL,
  registered_at INTEGER NOT NULL
) STRICT;
