-- ai-chain-analytics: an order's rows carry its user, so an order belongs to a decision only when its
-- clientOrderId is the decision id AND its user is the decision's user. By the client order id alone
-- (ai_chain_orders, 0005) a user who set another's decision id as the clientOrderId of their own order
-- had it counted in, and shown with, the other user's chain. A table of its own rather than a column
-- added to ai_chain_orders: 18.16 has no ADD COLUMN IF NOT EXISTS, so that statement could not be
-- re-run after an interruption. New orders are written here only; ai_chain_orders is no longer read.
CREATE TABLE IF NOT EXISTS ai_chain_user_orders (
  order_id     String,
  user_id      String,
  decision_id  String,
  day          Date,
  status       String,
  side         String,
  created_ms   UInt64,
  event_ms     UInt64,
  event_id     String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (decision_id, user_id, order_id, event_id);

-- The orders recorded before: their user was not kept, so each is given the user of the decision it
-- names (the link it had; one made by another user's order before this migration cannot be told
-- apart). An order whose decision was not pulled yet gets no user and is linked to nothing.
-- Re-running this after an interruption only repeats rows the reads fold.
INSERT INTO ai_chain_user_orders (order_id, user_id, decision_id, day, status, side, created_ms, event_ms, event_id)
  SELECT order_id, user_id, decision_id, day, status, side, created_ms, event_ms, event_id
  FROM ai_chain_orders
  ANY LEFT JOIN (SELECT decision_id, any(user_id) AS user_id FROM ai_chain_decisions GROUP BY decision_id) USING decision_id;
