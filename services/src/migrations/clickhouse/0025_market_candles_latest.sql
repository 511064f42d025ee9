-- Each symbol's latest candle of each timeframe, kept as candles are written: what a mark needs (the
-- latest close) without reading the symbol's history. ai-chain-analytics' summary found each symbol's
-- latest 1-minute close with a scalar subquery, max(open_time) per symbol over market_candles, which
-- reads every candle of the symbols (years of 1-minute bars) at every summary; 18.16 counts a scalar
-- subquery's reads neither in query_log's read_rows nor against max_rows_to_read (found by session 43's
-- business-logic hunt, shown by session 44's with query_log's SelectedMarks). Here a symbol and timeframe
-- are a row of each part, merged into one.
--
-- `version` orders a candle's versions: its open time first, then when it was written (market_candles is
-- a ReplacingMergeTree by inserted_at: a candle written again, corrected, replaces the one before), as
-- seconds in the high and low 32 bits of one UInt64. The columns are named apart from market_candles':
-- an alias named like a column would stand for it inside the other aggregate.
CREATE TABLE IF NOT EXISTS market_candles_latest (
  symbol     String,
  timeframe  String,
  last_open_time  AggregateFunction(max, DateTime),
  last_close      AggregateFunction(argMax, Float64, UInt64)
) ENGINE = AggregatingMergeTree
ORDER BY (symbol, timeframe);

-- Fed by every insert, whoever writes it (data-bridge's candle writer, a replay, a backfill, the release
-- before during a rolling deploy): a view sees the block after its DEFAULT columns (inserted_at) are filled.
CREATE MATERIALIZED VIEW IF NOT EXISTS market_candles_latest_by_candles TO market_candles_latest AS
  SELECT symbol, timeframe, maxState(open_time) AS last_open_time,
         argMaxState(close, bitShiftLeft(toUInt64(open_time), 32) + toUInt64(inserted_at)) AS last_close
  FROM market_candles GROUP BY symbol, timeframe;

-- The candles written before (once, at the migration). A candle written between the view's creation and
-- this is in both: max and argMax take it twice to the same answer, as after a re-run of this file.
INSERT INTO market_candles_latest (symbol, timeframe, last_open_time, last_close)
  SELECT symbol, timeframe, maxState(open_time) AS last_open_time,
         argMaxState(close, bitShiftLeft(toUInt64(open_time), 32) + toUInt64(inserted_at)) AS last_close
  FROM market_candles GROUP BY symbol, timeframe;
