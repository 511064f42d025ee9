-- OHLCV candles per symbol and interval (written by market data, read by analytics/backtests).
-- Prices as Float64 (analytics only; the trading path keeps decimals in PostgreSQL).
CREATE TABLE IF NOT EXISTS market_candles (
  symbol      String,
  timeframe   String,
  open_time   DateTime,
  open        Float64,
  high        Float64,
  low         Float64,
  close       Float64,
  volume      Float64,
  trades      UInt32,
  source      String,
  inserted_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(open_time)
ORDER BY (symbol, timeframe, open_time);
