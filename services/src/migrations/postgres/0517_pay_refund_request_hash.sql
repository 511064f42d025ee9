-- payment-service: what a refund's Idempotency-Key was first sent with (domain/intents.ts refundRequestHash: the
-- amount asked, null for what is left, and the reason). A retry of the key is answered its refund only for the same
-- request, another one is a 409 IDEMPOTENCY_KEY_REUSED naming the key, as for a charge. Before, only an amount given
-- was compared: `{}` ("refund the rest") under the key of a refund of 1,000 was answered that refund (200), as if
-- the rest had gone back (session 64b). Null for refunds recorded before: compared by an amount given, as then.
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS request_hash text;
