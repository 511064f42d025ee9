-- trading-engine, live mode: when a cancel request for an order with a te_live_sends record (one an
-- attempt that never committed may have sent to Binance, with no te_orders row saying it rests
-- there: executed and cancelled in the same batch, or held by the kill switch after such an
-- attempt) was about to be sent to Binance. Written with te_orders.cancel_sent_at (migration 0399)
-- in the same autocommit statement before the batch begins: the attempt that then looks the order
-- up at Binance and finds it CANCELED records it `cancelled` (the platform asked for it), not
-- `expired`; the batch that records the order in te_orders carries it over to te_orders.cancel_sent_at
-- as it deletes the record. NULL: no cancel was sent.

ALTER TABLE te_live_sends ADD COLUMN IF NOT EXISTS cancel_sent_at timestamptz;
