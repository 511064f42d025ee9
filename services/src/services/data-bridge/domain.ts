/**
 * data-bridge's rules, without I/O: what a bar must look like to enter the platform, and its
 * ClickHouse row. Prices and volumes are strict decimal strings: digits, an optional fraction, no
 * sign, exponent, hex, blanks or empty string (`Number()` would read " 100", "0x64" and "" as
 * numbers, and one such bar poisons every order on its symbol downstream). Prices are > 0, a
 * volume may be 0, the open time lies between 1970 and 2100 (what ClickHouse's DateTime and the
 * engines can hold).
 */
import { Type } from "../../kit";
import { HttpError } from "../../kit";
import { SYMBOL_RE, type Bar } from "../../trading/types";

/** Up to 15 integer digits and 12 decimals, no leading zeros, nothing else. */
export const DECIMAL_PATTERN = "^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,12})?$";
const DECIMAL_RE = new RegExp(DECIMAL_PATTERN);
/** 2100-01-01T00:00:00Z */
export const MAX_OPEN_TIME_MS = 4_102_444_800_000;
export const INTERVAL_PATTERN = "^[1-9][0-9]{0,3}[smhdw]$";

const Decimal = (description: string) => Type.String({ pattern: DECIMAL_PATTERN, maxLength: 28, description });

export const BarSchema = Type.Object(
  {
    symbol: Type.String({ pattern: SYMBOL_RE.source }),
    interval: Type.String({ pattern: INTERVAL_PATTERN }),
    openTime: Type.Integer({ minimum: 0, maximum: MAX_OPEN_TIME_MS }),
    closeTime: Type.Integer({ minimum: 0, maximum: MAX_OPEN_TIME_MS + 7 * 86_400_000 }),
    open: Decimal("price, a decimal string > 0"),
    high: Decimal("price, a decimal string > 0"),
    low: Decimal("price, a decimal string > 0"),
    close: Decimal("price, a decimal string > 0"),
    volume: Decimal("volume, a decimal string >= 0"),
  },
  { additionalProperties: false },
);

export const BarsBody = Type.Object(
  { bars: Type.Array(BarSchema, { minItems: 1, maxItems: 10_000 }), flush: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

const invalid = (field: string, message: string) => new HttpError(400, "INVALID_BAR", `${field} ${message}`, field);

/**
 * Checks one bar from any source (HTTP or a market data feed); `at` names it in the error
 * ("bars.3"). Throws a 400 HttpError naming the field.
 */
export function checkBar(b: Bar, at = "bar"): Bar {
  if (typeof b.symbol !== "string" || !SYMBOL_RE.test(b.symbol)) throw invalid(`${at}.symbol`, "must be an upper-case symbol");
  if (!Number.isSafeInteger(b.openTime) || b.openTime < 0 || b.openTime > MAX_OPEN_TIME_MS) throw invalid(`${at}.openTime`, "must be epoch milliseconds between 1970 and 2100");
  if (!Number.isSafeInteger(b.closeTime) || b.closeTime < b.openTime) throw invalid(`${at}.closeTime`, "must be an integer >= openTime");
  const v: Record<string, number> = {};
  for (const f of ["open", "high", "low", "close", "volume"] as const) {
    const raw = b[f];
    if (typeof raw !== "string" || !DECIMAL_RE.test(raw)) throw invalid(`${at}.${f}`, 'must be a decimal string such as "101.25"');
    v[f] = Number(raw);
    if (f !== "volume" && !(v[f] > 0)) throw invalid(`${at}.${f}`, "must be > 0");
  }
  if (v.low > Math.min(v.open, v.close)) throw invalid(`${at}.low`, "must be <= open and close");
  if (v.high < Math.max(v.open, v.close)) throw invalid(`${at}.high`, "must be >= open and close");
  return b;
}

const toChTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

export function candleRow(b: Bar, source: string) {
  return {
    symbol: b.symbol,
    timeframe: b.interval, // column is `timeframe` (migrations/clickhouse/0001_market_candles.sql)
    open_time: toChTime(b.openTime),
    open: Number(b.open),
    high: Number(b.high),
    low: Number(b.low),
    close: Number(b.close),
    volume: Number(b.volume),
    trades: 0,
    source,
  };
}
export type CandleRow = ReturnType<typeof candleRow>;

export function startOfUtcDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}
