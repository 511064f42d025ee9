/**
 * What a bar must look like to enter the platform, wherever it comes from (a feed, POST
 * /internal/bars, or a message on `market.candles`), without I/O. Prices and volumes are strict
 * decimal strings: digits, an optional fraction, no sign, exponent, hex, blanks or empty string
 * (`Number()` would read " 100", "0x64" and "" as numbers, and one such bar poisons every order on
 * its symbol downstream). Prices are > 0, a volume may be 0, low <= open, close <= high, the open
 * time lies between 1970 and 2100 (what ClickHouse's DateTime and the engines can hold).
 */
import { SYMBOL_RE } from "../types";

/** Up to 15 integer digits and 12 decimals, no leading zeros, nothing else. */
export const DECIMAL_PATTERN = "^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,12})?$";
const DECIMAL_RE = new RegExp(DECIMAL_PATTERN);
export const INTERVAL_PATTERN = "^[1-9][0-9]{0,3}[smhdw]$";
const INTERVAL_RE = new RegExp(INTERVAL_PATTERN);
/** 2100-01-01T00:00:00Z */
export const MAX_OPEN_TIME_MS = 4_102_444_800_000;
/** A bar closes at most a week after it opens (the longest interval). */
export const MAX_CLOSE_TIME_MS = MAX_OPEN_TIME_MS + 7 * 86_400_000;

export interface BarProblem {
  /** The field at fault ("close"). */
  field: string;
  message: string;
}

/** The first thing wrong with `v` as a bar, or undefined when it is one (unknown fields are ignored). */
export function barProblem(v: unknown): BarProblem | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { field: "bar", message: "must be an object" };
  const b = v as Record<string, unknown>;
  return seriesProblem(b.symbol, b.interval) ?? barValuesProblem(b.openTime, b.closeTime, b.open, b.high, b.low, b.close, b.volume);
}

/** What is wrong with a bar's symbol or interval (a batched candles message carries them once). */
export function seriesProblem(symbol: unknown, interval: unknown): BarProblem | undefined {
  if (typeof symbol !== "string" || !SYMBOL_RE.test(symbol)) return { field: "symbol", message: "must be an upper-case symbol" };
  if (typeof interval !== "string" || !INTERVAL_RE.test(interval)) return { field: "interval", message: 'must be an interval such as "1m"' };
  return undefined;
}

const NOT_DECIMAL = 'must be a decimal string such as "101.25"';
/** A strict decimal string's value, or -1 when `raw` is not one. */
const decimalValue = (raw: unknown): number => (typeof raw === "string" && DECIMAL_RE.test(raw) ? Number(raw) : -1);
const priceProblem = (field: string, n: number): BarProblem => ({ field, message: n < 0 ? NOT_DECIMAL : "must be > 0" });

/**
 * What is wrong with a bar's times, prices and volume (fields checked in this order; the first
 * problem is named). Called once or twice per bar on the ingest path: no allocation unless it fails.
 */
export function barValuesProblem(openTime: unknown, closeTime: unknown, open: unknown, high: unknown, low: unknown, close: unknown, volume: unknown): BarProblem | undefined {
  if (typeof openTime !== "number" || !Number.isSafeInteger(openTime) || openTime < 0 || openTime > MAX_OPEN_TIME_MS) return { field: "openTime", message: "must be epoch milliseconds between 1970 and 2100" };
  if (typeof closeTime !== "number" || !Number.isSafeInteger(closeTime) || closeTime < openTime || closeTime > MAX_CLOSE_TIME_MS) return { field: "closeTime", message: "must be an integer >= openTime" };
  const o = decimalValue(open);
  if (!(o > 0)) return priceProblem("open", o);
  const h = decimalValue(high);
  if (!(h > 0)) return priceProblem("high", h);
  const l = decimalValue(low);
  if (!(l > 0)) return priceProblem("low", l);
  const c = decimalValue(close);
  if (!(c > 0)) return priceProblem("close", c);
  if (decimalValue(volume) < 0) return { field: "volume", message: NOT_DECIMAL };
  if (l > Math.min(o, c)) return { field: "low", message: "must be <= open and close" };
  if (h < Math.max(o, c)) return { field: "high", message: "must be >= open and close" };
  return undefined;
}
