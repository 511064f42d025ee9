-- payment-service: refunds an operator has to look at (refund-issues.ts, GET /refund-issues).
-- `exceeds_payment`: the processor reports a refund succeeded that does not fit into what is left of
-- the payment here (ours and one made on its dashboard racing, or our record diverging from the
-- processor's): booking it hit pay_intents' CHECK (refunded <= amount) and the webhook answered 500,
-- which the processor retried for days. It is now decided under the payment's lock before any write:
-- not booked, recorded here once, the webhook answered 200 `exceeds_payment`.
-- `not_found`: a succeeded refund the processor's list does not return at a re-check (logged as an
-- error at every re-check before; now recorded and logged once, resolved if it is found again).
-- One row per issue and refund (`issue_key`): replays and later events only count `seen`.
CREATE TABLE IF NOT EXISTS pay_refund_issues (
  issue_key            text PRIMARY KEY,
  kind                 text NOT NULL CHECK (kind IN ('exceeds_payment', 'not_found')),
  intent_id            uuid NOT NULL REFERENCES pay_intents (intent_id),
  -- Ours (null: a refund made at the processor that was not recorded, known by its processor id only).
  refund_id            uuid REFERENCES pay_refunds (refund_id),
  processor_refund_id  text,
  amount               bigint NOT NULL,
  processor_status     text,
  first_seen_at        timestamptz NOT NULL DEFAULT now(),
  last_seen_at         timestamptz NOT NULL DEFAULT now(),
  seen                 integer NOT NULL DEFAULT 1,
  resolved_at          timestamptz
);
CREATE INDEX IF NOT EXISTS pay_refund_issues_open ON pay_refund_issues (first_seen_at) WHERE resolved_at IS NULL;
