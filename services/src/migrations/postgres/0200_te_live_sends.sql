-- trading-engine, live mode: the orders a batch is about to send to Binance, written in autocommit
-- before the first is sent and deleted by the batch transaction that records them in te_orders.
-- Binance is called inside that transaction: a process killed after Binance accepted (or filled) an
-- order and before the COMMIT left no trace of the send, and the redelivered order was placed again
-- (Binance takes a client order id again once the order holding it is no longer open). An order
-- with a row here may be at Binance: the engine asks Binance by client order id before sending it.
-- A row stays only for a batch that never committed (at most its orders, until they are redelivered).

CREATE TABLE IF NOT EXISTS te_live_sends (
  order_id uuid PRIMARY KEY,
  sent_at  timestamptz NOT NULL DEFAULT now()
);
