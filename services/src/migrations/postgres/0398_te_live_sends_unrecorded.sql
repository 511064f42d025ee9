-- trading-engine, live mode: an order Binance accepted whose own te_orders row cannot be written
-- even alone (trading-engine/sentOrders.ts: cancelled at Binance if it rests there, counted in
-- te_live_orders_unrecorded_total) keeps its te_live_sends row, which must stay: it is what makes a
-- redelivery of the order look at Binance instead of placing it again. `unrecorded` says what became
-- of it at Binance, as the counter's `outcome` does: `cancelled` or `not_open` end it there (a
-- redelivery is then set aside without asking Binance, and counted no more); `cancel_failed` may
-- still be open (a redelivery looks it up and tries the cancel again). NULL: a send in flight, or of
-- a batch that never committed, as before. The rows with it set are the orders to reconcile by hand.

ALTER TABLE te_live_sends
  ADD COLUMN IF NOT EXISTS unrecorded text CHECK (unrecorded IN ('cancelled', 'cancel_failed', 'not_open')),
  ADD COLUMN IF NOT EXISTS unrecorded_at timestamptz;
