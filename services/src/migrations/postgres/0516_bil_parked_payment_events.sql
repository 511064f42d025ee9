-- billing-service: payment events parked for an invoice billing does not have (yet). Before, the consumer
-- waited inside its batch (BILLING_UNKNOWN_INVOICE_WAIT_MS, 2 s) for the invoice's commit, holding up every
-- later event of the partition; now it parks the event here and goes on (payment-events.ts). The invoice's
-- creation applies its parked events in its own transaction (invoicing.ts create); a periodic pass
-- (parked-payment-events.ts) applies those whose invoice appeared otherwise (a commit racing the parking, an
-- operator's restore) and sets aside in consumer_dead_letters those parked longer than the wait, with the
-- message as received (its topic, partition, offset, key, value and headers), as the consumer sets one aside.
-- A parked event is not in bil_processed_events: whoever applies it marks it there (deduped by event id).
CREATE TABLE IF NOT EXISTS bil_parked_payment_events (
  event_id text PRIMARY KEY,
  invoice_id uuid NOT NULL,
  -- The event as the consumer parsed it (PaymentEventMsg), what is applied.
  event jsonb NOT NULL,
  consumer_group text NOT NULL,
  topic text NOT NULL,
  msg_partition integer NOT NULL,
  msg_offset bigint NOT NULL,
  msg_key bytea,
  msg_value bytea,
  msg_headers jsonb NOT NULL DEFAULT '[]',
  parked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bil_parked_payment_events_invoice ON bil_parked_payment_events (invoice_id);
CREATE INDEX IF NOT EXISTS bil_parked_payment_events_parked_at ON bil_parked_payment_events (parked_at);
