-- portfolio-manager: GET /api/portfolio/fills answers a user's fills in pages, newest first, ordered
-- by (fill_ts, fill_id) so that fills of one instant keep one order across pages. This index serves
-- that order and the page's bound (a row comparison on both columns) from the index alone; it
-- holds pm_fills_user_ts's columns first, so that index is no longer needed.
CREATE INDEX IF NOT EXISTS pm_fills_user_ts_id ON pm_fills (user_id, fill_ts, fill_id);
DROP INDEX IF EXISTS pm_fills_user_ts;
