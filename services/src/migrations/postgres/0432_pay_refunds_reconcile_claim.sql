-- payment-service: the refund reconciler (refund-reconciler.ts) asked the processor inside the
-- transaction that held the refund's and its payment's rows (FOR UPDATE), so a slow processor kept
-- every other refund, retry and webhook of that payment waiting, and a pool connection busy per refund.
-- It now claims a refund with a committed lease, asks the processor with no transaction open, and
-- settles only if the refund is still pending and still carries its claim. `reconcile_claim`: the
-- pass's token (cleared by a retry of the refund's key, which sends it again); another pass skips the
-- refund until `reconcile_claimed_until` (a pass that died leaves it for the next after that).
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS reconcile_claim uuid;
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS reconcile_claimed_until timestamptz;
