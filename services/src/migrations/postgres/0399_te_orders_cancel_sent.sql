-- trading-engine, live mode: when a cancel request for a resting live order was about to be sent to
-- Binance. Written in autocommit before the batch that sends the cancel begins (the DELETE at Binance
-- runs inside that batch's transaction, so the transaction cannot remember it): a process killed
-- between Binance's CANCELED and the COMMIT leaves the order `resting` with this set, and the poll
-- that then finds it CANCELED at Binance records it `cancelled` (the platform asked for it) instead
-- of `expired` (ended at Binance without a request of ours). NULL: no cancel was sent. It stays on a
-- finished order's row (when its cancel was sent); only a `resting` row's is read.

ALTER TABLE te_orders ADD COLUMN IF NOT EXISTS cancel_sent_at timestamptz;
