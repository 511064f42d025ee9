-- trading-engine: the position each user holds in each symbol as the engine's own fills make it
-- (signed filled quantity, te_fills), so the engine can enforce the kill switch's reduce_only on the
-- fills it commits (halts.ts). order-management's om_positions holds the same total but lags by the
-- Kafka hop (it counts a fill once order-management has applied the engine's event): a batch reading
-- it would not see the fills of the batches just before it and could let a second sell through zero.
--
-- A statement trigger on te_fills keeps it, as om_positions is kept: every writer of fills (a batch,
-- a live poll) moves it in the same transaction, and a fill row is recorded once (its id is the key;
-- a redelivered fill is skipped by ON CONFLICT and is not in the transition table), so each fill
-- moves the total once. Rows are upserted in key order (two transactions touching the same users
-- lock them in the same order). The backfill runs after a lock that blocks fill inserts until commit.

CREATE TABLE IF NOT EXISTS te_positions (
  user_id  text NOT NULL,
  symbol   text NOT NULL,
  quantity numeric NOT NULL,
  PRIMARY KEY (user_id, symbol)
);

LOCK TABLE te_fills IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION te_positions_add_fills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO te_positions (user_id, symbol, quantity)
  SELECT f.payload->>'userId', f.payload->>'symbol',
         sum(CASE WHEN f.payload->>'side' = 'buy' THEN (f.payload->>'quantity')::numeric ELSE -(f.payload->>'quantity')::numeric END)
    FROM new_fills f
   GROUP BY 1, 2
   ORDER BY 1, 2
  ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = te_positions.quantity + excluded.quantity;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS te_fills_positions ON te_fills;
CREATE TRIGGER te_fills_positions AFTER INSERT ON te_fills
  REFERENCING NEW TABLE AS new_fills FOR EACH STATEMENT EXECUTE FUNCTION te_positions_add_fills();

INSERT INTO te_positions (user_id, symbol, quantity)
SELECT payload->>'userId', payload->>'symbol',
       sum(CASE WHEN payload->>'side' = 'buy' THEN (payload->>'quantity')::numeric ELSE -(payload->>'quantity')::numeric END)
  FROM te_fills
 GROUP BY 1, 2
ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = excluded.quantity;
