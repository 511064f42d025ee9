-- trading-engine, live mode: te_live_sends.venue_order is the order a placement was sent for (the
-- engine's OrderRequest, its user's clientOrderId left out when jsonb cannot hold it: Binance knows
-- the order by the platform's order id), written with each placement's timestamp (sent_at) and with
-- the `unrecorded` mark. It is what the live poll needs to ask Binance about an order whose record
-- an attempt that never committed left and that has no te_orders row (symbol, order id; quantity,
-- side and owner for its fills and events): adopted from Binance without waiting for a redelivery,
-- and, for one marked `cancel_failed`, its cancel tried again. NULL: no placement was sent, or the
-- record predates this migration (such an order waits for its redelivery, as before).

ALTER TABLE te_live_sends ADD COLUMN IF NOT EXISTS venue_order jsonb;
