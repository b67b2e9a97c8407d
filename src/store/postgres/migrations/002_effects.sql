-- Effects and compensations: the key an external system dedupes an effect on.
ALTER TABLE steps ADD COLUMN idempotency_key text;

-- What the claim statement walks for compensating runs, in claim order (unowned ones that
-- are due, and leases that may have expired).
CREATE INDEX runs_compensating ON runs (priority DESC, created_at, id)
  WHERE status = 'compensating';
-- What the reaper walks for handed-off runs: queued, resumed, waiting since available_at.
-- (Orphaned runs are found by runs_leased.)
CREATE INDEX runs_handed_off ON runs (available_at) WHERE status = 'queued' AND resumed;
