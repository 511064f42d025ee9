-- Today's realized PnL net of fees per user (UTC day), kept as a running total so the pre-trade check
-- reads one row instead of summing the user's fills of the day on every order: that sum grew with
-- every fill of the day (bench/trading.ts: 107 index entries read per check 30 s into a run of 32
-- users; a bot trading all day would have its every order pay for thousands).
--
-- A statement trigger on pm_fills maintains it, like om_positions (0197): every writer of fills,
-- a portfolio-manager replica still running the previous release included, keeps it right. A fill
-- row is recorded once (its id is the key), so each fill moves its day's total once. The backfill
-- runs after a lock that blocks fill inserts until this migration commits.

CREATE TABLE IF NOT EXISTS pm_daily_pnl (
  user_id text NOT NULL,
  day     date NOT NULL,
  net     numeric NOT NULL,
  PRIMARY KEY (user_id, day)
);

LOCK TABLE pm_fills IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION pm_daily_pnl_add_fills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pm_daily_pnl (user_id, day, net)
  SELECT user_id, (fill_ts AT TIME ZONE 'UTC')::date, sum(realized_pnl - fee)
    FROM new_fills
   GROUP BY 1, 2
  ON CONFLICT (user_id, day) DO UPDATE SET net = pm_daily_pnl.net + excluded.net;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pm_fills_daily_pnl ON pm_fills;
CREATE TRIGGER pm_fills_daily_pnl AFTER INSERT ON pm_fills
  REFERENCING NEW TABLE AS new_fills FOR EACH STATEMENT EXECUTE FUNCTION pm_daily_pnl_add_fills();

INSERT INTO pm_daily_pnl (user_id, day, net)
SELECT user_id, (fill_ts AT TIME ZONE 'UTC')::date, sum(realized_pnl - fee)
  FROM pm_fills
 GROUP BY 1, 2
ON CONFLICT (user_id, day) DO UPDATE SET net = excluded.net;

-- The outboxes are queues: every row is inserted, updated once (sent) and never read again, and each
-- sent row leaves a dead entry in the unsent index that the relays' scans from the start walk until
-- vacuum removes it. Vacuum them after a fixed number of changes instead of a fifth of the table (a
-- table of millions of sent rows waited for hundreds of thousands of dead ones).
ALTER TABLE om_outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);
ALTER TABLE te_outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);
