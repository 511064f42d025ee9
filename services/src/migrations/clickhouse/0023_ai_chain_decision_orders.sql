-- ai-chain-analytics: the order ai-orchestrator placed for each decision (the decision's `orderId`),
-- with the decision's user. It is how the readers link the orders still written to 0005's
-- ai_chain_orders during a rolling deploy: a replica of the release before 0022 writes there, and
-- without its user (that table has no user column), so those orders were in no chain for good.
--
-- Why the readers read both tables (store.ts) rather than a materialized view from ai_chain_orders
-- into ai_chain_user_orders: a view would have to give each row its user as it is inserted, and
-- the old row does not carry one. Taking the user of the decision the row names would link another
-- user's order that names the decision (the defect 0022 fixed) again; taking it from this table
-- would lose every order consumed before the decision's next pull, which is the usual order (the
-- order event comes within milliseconds, the pull every CHAIN_POLL_MS), and a view on 18.16 sees
-- only the inserts into its source after it is created (rows written between 0022's carry-over and
-- this migration would be lost). Read at query time instead, an old row counts once its decision's
-- order id is here, whenever that arrives, and only for that order: B's order naming A's decision
-- has another order id and stays linked to nothing. The same event written by an old and a new
-- replica (at-least-once delivery, a rebalance during the rollout), or carried over by 0022 and
-- still in the old table, is one order: the reads group by order id, as they fold repeats already.
-- A table of its own, not a column on ai_chain_decisions: 18.16 has no ADD COLUMN IF NOT EXISTS.
-- Written on every pull (a decision's order id is added after the decision is recorded, and a
-- re-read brings it); repeats fold at merge time and in the reads.
CREATE TABLE IF NOT EXISTS ai_chain_decision_orders (
  decision_id String,
  order_id    String,
  user_id     String,
  day         Date
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (order_id, decision_id);
