-- billing-service: the payments whose failure counted as a failed attempt of an invoice (invoicing.ts
-- failedAttempt). payment-service's reconciler closes a charge the processor never saw as failed
-- (`never_reached_processor`: payment.failed) and books it succeeded when the processor reports it after
-- all (payment.succeeded of the same intent): billing counted that attempt failed and then, paying the
-- invoice, counted it once more. A payment's failure is now recorded here once; the invoice it pays
-- counts it as paid only (its attempt was counted already), and a second failure of the same payment
-- counts nothing. `intent_id` is text: the event's id as told (payments.events' contract takes any id).
CREATE TABLE IF NOT EXISTS bil_failed_attempts (
  invoice_id  uuid NOT NULL REFERENCES bil_invoices (invoice_id),
  intent_id   text NOT NULL,
  attempt     integer NOT NULL CHECK (attempt > 0),
  failed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (invoice_id, intent_id)
);
