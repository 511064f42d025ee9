/**
 * Money and quantity arithmetic without float drift.
 *
 * Why decimal.js rather than integer minor units: crypto quantities need up to 8 decimals and
 * prices up to 8 as well, so `price * quantity` needs 16 fractional digits and overflows
 * `Number.MAX_SAFE_INTEGER` (2^53) for ordinary notionals; scaled BigInt would work but every
 * division (average price, VaR, bps) would need hand-written rounding. decimal.js is an
 * arbitrary-precision base-10 library (pure JS, no native code, typed) where 0.1 + 0.2 === 0.3,
 * and rounding happens only where we ask for it. We use an isolated clone (precision 40 significant
 * digits, banker's rounding for explicit rounding) so no other module's global configuration leaks in.
 *
 * Values cross process boundaries (Kafka, HTTP, PostgreSQL NUMERIC) as decimal strings, never floats.
 */
import DecimalBase from "decimal.js";

export const Decimal = DecimalBase.clone({ precision: 40, rounding: DecimalBase.ROUND_HALF_EVEN, toExpNeg: -30, toExpPos: 40 });
export type Decimal = InstanceType<typeof Decimal>;
export type DecimalLike = Decimal | string | number;

/** Parses a decimal string / number (numbers via their shortest string form, so 0.1 is exactly 0.1). */
export function D(value: DecimalLike): Decimal {
  if (value instanceof Decimal) return value;
  if (typeof value === "number" && !Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
  const d = new Decimal(typeof value === "number" ? String(value) : value);
  if (!d.isFinite()) throw new RangeError(`not a finite decimal: ${value}`);
  return d;
}

export const ZERO = D(0);

/** Quote-currency amounts are kept at 8 decimals internally (USDT precision on Binance). */
export const QUOTE_DP = 8;
/** Rounds a quote amount to its storage precision (half-even). */
export function quote(value: DecimalLike): Decimal {
  return D(value).toDecimalPlaces(QUOTE_DP, Decimal.ROUND_HALF_EVEN);
}
/** Rounds to cents for display / reports (half-even). */
export function cents(value: DecimalLike): string {
  return D(value).toDecimalPlaces(2, Decimal.ROUND_HALF_EVEN).toFixed(2);
}
/** Basis points as a fraction: 10 bps -> 0.001. */
export function bps(value: DecimalLike): Decimal {
  return D(value).div(10_000);
}
/** Rounds a price to a tick size (e.g. "0.01"), half-even. */
export function roundToTick(price: DecimalLike, tick: DecimalLike): Decimal {
  const t = D(tick);
  return D(price).div(t).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN).mul(t);
}
/** Canonical string of a decimal (no exponent, no trailing zeros). */
export function str(value: DecimalLike): string {
  return D(value).toFixed();
}
