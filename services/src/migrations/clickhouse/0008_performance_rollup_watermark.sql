-- performance-analytics: how far the rollup has read its inputs (rollup.ts). A pass that completes
-- records the ClickHouse time it started at: every fill, order strategy and candle inserted before
-- it (less an overlap for inserts still in flight) is in pa_daily. The next pass recomputes only
-- the users with an input inserted since. One row per pass; readers take the highest version (a
-- late row of a stale leader cannot move it back). Missing (or written for another capital base or
-- price timeframe): the next pass recomputes every user.
CREATE TABLE IF NOT EXISTS pa_rollup_watermark (
  name      String,
  through   UInt32,   -- unix seconds, the ClickHouse clock (that of inserted_at)
  day       Date,
  params    String,
  version   UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name;
