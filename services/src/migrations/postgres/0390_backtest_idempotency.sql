-- backtesting-engine: a submission may carry an Idempotency-Key (unique per owner, as om_orders and
-- pay_intents); the request's hash tells a retry (same body: the run is answered again) from a
-- reuse of the key with another body (409).
ALTER TABLE bt_runs ADD COLUMN IF NOT EXISTS idempotency_key text;
ALTER TABLE bt_runs ADD COLUMN IF NOT EXISTS request_hash text;
CREATE UNIQUE INDEX IF NOT EXISTS bt_runs_idempotency ON bt_runs (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
