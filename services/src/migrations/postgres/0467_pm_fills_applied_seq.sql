-- portfolio-manager: GET /api/portfolio/fills answers a user's fills newest first by fill_ts, the
-- market time of the fill (a paper market order's fill carries the last bar's close time, so every
-- market fill between two bars shares one fill_ts). Among fills of one fill_ts the order was the
-- fill id's, which is the order id's (random): a buy and the sell after it in the same minute were
-- listed in either order. applied_seq numbers the fills in the order portfolio-manager applies them
-- (a user's fills arrive on one partition in the order the engine committed them), the tie-breaker
-- before the fill id. Rows written before this migration read 0 (a constant default: no table
-- rewrite), so they sort as before among themselves; new rows take the sequence.
CREATE SEQUENCE IF NOT EXISTS pm_fills_applied_seq;
ALTER TABLE pm_fills ADD COLUMN IF NOT EXISTS applied_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE pm_fills ALTER COLUMN applied_seq SET DEFAULT nextval('pm_fills_applied_seq');
ALTER SEQUENCE pm_fills_applied_seq OWNED BY pm_fills.applied_seq;
-- The listing's order and the page's bound (a row comparison on the three columns) from the index
-- alone; it holds pm_fills_user_ts_id's first columns, so that index goes.
CREATE INDEX IF NOT EXISTS pm_fills_user_ts_seq_id ON pm_fills (user_id, fill_ts, applied_seq, fill_id);
DROP INDEX IF EXISTS pm_fills_user_ts_id;
