-- payment-service's reconciliation looks up again, for the in-flight bound of one processor request
-- after it closed them, the intents it failed as `never_reached_processor` (our inference, not the
-- processor's word): a charge the processor made of one after all is booked (payments.ts reconcile,
-- repo.ts staleOpen). This partial index keeps that lookup off the table's failed rows.
CREATE INDEX IF NOT EXISTS pay_intents_never_reached ON pay_intents (updated_at) WHERE status = 'failed' AND failure_code = 'never_reached_processor';
