-- Effects and compensations: the key an external system dedupes an effect on.
ALTER TABLE steps ADD COLUMN idempotency_key TEXT;
