-- The position as order-management knows it (signed filled quantity per user and symbol), kept as a
-- running total so the pre-trade check reads one row instead of summing the user's whole order
-- history in that symbol on every order (issue 10: that sum grew with every order ever filled).
--
-- A statement trigger on om_order_fills maintains it, not the application: every writer of fills,
-- including an order-management replica still running the previous release during a rolling
-- deploy, keeps it right. A fill row is recorded once (its id is the key), so each fill moves the
-- total once. The backfill below runs in this migration's transaction after taking a lock that
-- blocks fill inserts until commit, so no fill is counted twice or missed.

CREATE TABLE IF NOT EXISTS om_positions (
  user_id  text NOT NULL,
  symbol   text NOT NULL,
  quantity numeric NOT NULL,
  PRIMARY KEY (user_id, symbol)
);

LOCK TABLE om_order_fills IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION om_positions_add_fills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO om_positions (user_id, symbol, quantity)
  SELECT o.user_id, o.symbol, sum(CASE WHEN o.side = 'buy' THEN f.quantity ELSE -f.quantity END)
    FROM new_fills f JOIN om_orders o ON o.order_id = f.order_id
   GROUP BY o.user_id, o.symbol
  ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = om_positions.quantity + excluded.quantity;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS om_order_fills_positions ON om_order_fills;
CREATE TRIGGER om_order_fills_positions AFTER INSERT ON om_order_fills
  REFERENCING NEW TABLE AS new_fills FOR EACH STATEMENT EXECUTE FUNCTION om_positions_add_fills();

INSERT INTO om_positions (user_id, symbol, quantity)
SELECT o.user_id, o.symbol, sum(CASE WHEN o.side = 'buy' THEN f.quantity ELSE -f.quantity END)
  FROM om_order_fills f JOIN om_orders o ON o.order_id = f.order_id
 GROUP BY o.user_id, o.symbol
ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = excluded.quantity;

-- The partial index that served the old sum has no reader any more.
DROP INDEX IF EXISTS om_orders_user_symbol_filled;
