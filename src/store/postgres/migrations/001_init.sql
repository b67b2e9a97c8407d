-- Baton schema for PostgreSQL, version 1. Applied with search_path set to Baton's schema
-- (option `schema`, default "baton"). Times are epoch milliseconds on the database clock.

CREATE TABLE runs (
  id               text    PRIMARY KEY,
  workflow         text    NOT NULL,
  version          integer NOT NULL,
  status           text    NOT NULL,
  input            text,
  output           text,
  error            text,
  priority         integer NOT NULL DEFAULT 0,
  fence            bigint  NOT NULL DEFAULT 0,
  lease_owner      text,
  lease_expires_at bigint,
  available_at     bigint  NOT NULL,
  interruptions    integer NOT NULL DEFAULT 0,
  resumed          boolean NOT NULL DEFAULT false,
  created_at       bigint  NOT NULL,
  updated_at       bigint  NOT NULL,
  completed_at     bigint
);

-- What the claim statement walks, in claim order: waiting runs (due or not yet), and
-- leases that may have expired.
CREATE INDEX runs_waiting ON runs (priority DESC, resumed DESC, created_at, id)
  WHERE status IN ('queued', 'sleeping');
CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_lease_owner ON runs (lease_owner) WHERE lease_owner IS NOT NULL;
-- Listing, newest first, with keyset paging.
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_status_created ON runs (status, created_at DESC, id DESC);

CREATE TABLE steps (
  run_id     text    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  name       text    NOT NULL,
  kind       text    NOT NULL,
  status     text    NOT NULL,
  output     text,
  error      text,
  progress   text,
  attempts   integer NOT NULL DEFAULT 0,
  fence      bigint  NOT NULL,
  worker_id  text    NOT NULL,
  started_at bigint,
  updated_at bigint  NOT NULL,
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE workers (
  id           text    PRIMARY KEY,
  state        text    NOT NULL,
  host         text    NOT NULL,
  pid          integer NOT NULL,
  concurrency  integer NOT NULL,
  started_at   bigint  NOT NULL,
  heartbeat_at bigint  NOT NULL,
  stopped_at   bigint
);

CREATE TABLE events (
  id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id    text    NOT NULL,
  kind      text    NOT NULL,
  at        bigint  NOT NULL,
  worker_id text,
  fence     bigint,
  detail    text
);

CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE shutdowns (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  worker_id text   NOT NULL,
  at        bigint NOT NULL,
  report    text   NOT NULL
);

CREATE INDEX shutdowns_worker ON shutdowns (worker_id, id);

-- Workflows some worker of this store can run, so a client can start one by name.
CREATE TABLE workflows (
  name          text    PRIMARY KEY,
  version       integer NOT NULL,
  registered_at bigint  NOT NULL
);
