-- performance-analytics' rollup (rollup.ts, watermark.ts): the figures' definition version of each
-- pass, and the changes fed at insert time that tell which users changed since a watermark.
--
-- pa_rollup_passes: one row per completed pass (complete = 1: its watermark) and one per claim
-- (complete = 0: a release whose FIGURES_VERSION no pass had written yet is about to rebuild every
-- user). An older release that finds a claim or pass of a greater `figures` leaves the rollup alone.
-- It supersedes pa_rollup_watermark (0008), which has no figures column and cannot get one
-- idempotently on 18.16 (no ADD COLUMN IF NOT EXISTS): readers still take that table's rows, as
-- figures 1 (the definition of the releases before versioning), so no rebuild follows this migration.
CREATE TABLE IF NOT EXISTS pa_rollup_passes (
  name      String,
  through   UInt32,   -- unix seconds, the ClickHouse clock (that of inserted_at)
  day       Date,
  params    String,
  figures   UInt32,   -- FIGURES_VERSION of the release that ran the pass (domain.ts)
  version   UInt64,
  complete  UInt8
) ENGINE = MergeTree
ORDER BY (name, version);

-- Users and symbols by the time their input changed, ordered by that time: finding the changes
-- since a watermark reads the primary key's range from it on, not a whole inserted_at column.
-- ReplacingMergeTree: repeats (redeliveries, several fills in one second) fold on merge.
CREATE TABLE IF NOT EXISTS pa_changed_users (
  changed_at  DateTime,
  user_id     String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(changed_at)
ORDER BY (changed_at, user_id);

-- changed_at of a candle is its insert, or the start of its day when that is later: a pass caps
-- curves at its own day, so a close dated after it changes the curves once that day has come.
CREATE TABLE IF NOT EXISTS pa_changed_symbols (
  changed_at  DateTime,
  timeframe   String,
  symbol      String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(changed_at)
ORDER BY (changed_at, timeframe, symbol);

-- Who traded what, by symbol: the users a changed close moves, read by key.
CREATE TABLE IF NOT EXISTS pa_symbol_users (
  symbol   String,
  user_id  String
) ENGINE = ReplacingMergeTree
ORDER BY (symbol, user_id);

-- Fed by every insert, whoever writes it (the consumers, data-bridge's candle writer). A view fires
-- per inserted block before ReplacingMergeTree deduplicates: harmless here, these are sets.
CREATE MATERIALIZED VIEW IF NOT EXISTS pa_changed_users_by_fills TO pa_changed_users AS
  SELECT inserted_at AS changed_at, user_id FROM pa_fills GROUP BY changed_at, user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS pa_changed_users_by_strategies TO pa_changed_users AS
  SELECT inserted_at AS changed_at, user_id FROM pa_order_strategies GROUP BY changed_at, user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS pa_symbol_users_by_fills TO pa_symbol_users AS
  SELECT symbol, user_id FROM pa_fills GROUP BY symbol, user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS pa_changed_symbols_by_candles TO pa_changed_symbols AS
  SELECT greatest(inserted_at, toStartOfDay(open_time)) AS changed_at, timeframe, symbol FROM market_candles
  GROUP BY changed_at, timeframe, symbol;

-- What was inserted before the views existed: every symbol a user traded, and the changes from a
-- day before the oldest watermark on (a pass looks back at most its overlap, <= 86400 s, before its
-- watermark). Re-running these after an interruption only repeats rows the tables fold.
INSERT INTO pa_symbol_users SELECT symbol, user_id FROM pa_fills GROUP BY symbol, user_id;

INSERT INTO pa_changed_users
  SELECT inserted_at AS changed_at, user_id FROM pa_fills
   WHERE toUInt32(inserted_at) + 86400 >= (SELECT min(through) FROM pa_rollup_watermark)
   GROUP BY changed_at, user_id;

INSERT INTO pa_changed_users
  SELECT inserted_at AS changed_at, user_id FROM pa_order_strategies
   WHERE toUInt32(inserted_at) + 86400 >= (SELECT min(through) FROM pa_rollup_watermark)
   GROUP BY changed_at, user_id;

INSERT INTO pa_changed_symbols
  SELECT greatest(inserted_at, toStartOfDay(open_time)) AS changed_at, timeframe, symbol FROM market_candles
   WHERE toUInt32(greatest(inserted_at, toStartOfDay(open_time))) + 86400 >= (SELECT min(through) FROM pa_rollup_watermark)
   GROUP BY changed_at, timeframe, symbol;
