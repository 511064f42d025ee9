/**
 * Money as integer minor units (cents, pence, yen), carried as `bigint` in the domain and as
 * BIGINT in PostgreSQL. Floats never touch an amount: JSON amounts are integers (the shape card
 * processors use), parsed here with range checks; divisions (proration, allocation) round with an
 * explicit rule and the rounding remainder is never lost.
 */

/** ISO 4217 codes the platform bills in, with their minor-unit exponent. */
export const CURRENCIES = { usd: 2, eur: 2, gbp: 2, chf: 2, jpy: 0 } as const;
export type Currency = keyof typeof CURRENCIES;

export function isCurrency(code: string): code is Currency {
  return Object.prototype.hasOwnProperty.call(CURRENCIES, code);
}

/**
 * The smallest amount the card processor charges, per currency, in minor units (Stripe's documented
 * minimums: 0.50 of the dollar, euro and franc, 0.30 of the pound, 50 yen); it refuses less
 * (`amount_too_small`). An invoice owing less is not charged: the amount is carried to the next one.
 */
export const MIN_CHARGE: Record<Currency, bigint> = { usd: 50n, eur: 50n, gbp: 30n, chf: 50n, jpy: 50n };

/**
 * The largest amount the card processor charges, per currency, in the currency's smallest unit
 * (Stripe's documented limit: eight digits, 999,999.99 of the dollar, euro, pound and franc; the yen
 * has no minor unit, so 99,999,999 yen); it refuses more. A plan priced above it was refused on every charge.
 */
export const MAX_CHARGE: Record<Currency, bigint> = { usd: 99_999_999n, eur: 99_999_999n, gbp: 99_999_999n, chf: 99_999_999n, jpy: 99_999_999n };

/** Largest amount accepted from a client: 10^12 minor units (10 billion dollars). */
export const MAX_AMOUNT = 1_000_000_000_000n;

export class MoneyError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "MoneyError";
  }
}

/**
 * Parses an amount in minor units from a JSON number, a decimal-digit string or a bigint.
 * Rejects fractions, exponents, non-finite values and anything outside [min, MAX_AMOUNT].
 */
export function parseMinor(value: unknown, field = "amount", min = 0n): bigint {
  let v: bigint;
  if (typeof value === "bigint") v = value;
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new MoneyError(`${field} must be an integer number of minor units`, field);
    v = BigInt(value);
  } else if (typeof value === "string" && /^-?(0|[1-9]\d{0,18})$/.test(value)) v = BigInt(value);
  else throw new MoneyError(`${field} must be an integer number of minor units`, field);
  if (v < min) throw new MoneyError(`${field} must be >= ${min}`, field);
  if (v > MAX_AMOUNT) throw new MoneyError(`${field} must be <= ${MAX_AMOUNT}`, field);
  return v;
}

/** A bigint amount as a JSON-safe number (amounts are bounded by MAX_AMOUNT, far below 2^53). */
export function toJson(amount: bigint): number {
  const n = Number(amount);
  if (!Number.isSafeInteger(n)) throw new MoneyError(`amount ${amount} exceeds the JSON-safe range`);
  return n;
}

/**
 * amount * numerator / denominator rounded half away from zero: the rule card processors apply to
 * prorations. Exact (bigint), so 1/3 of 100 cents is 33 and 2/3 is 67.
 */
export function mulDivRound(amount: bigint, numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new MoneyError("denominator must be positive");
  const p = amount * numerator;
  const neg = p < 0n;
  const abs = neg ? -p : p;
  const q = abs / denominator;
  const r = abs % denominator;
  const rounded = r * 2n >= denominator ? q + 1n : q;
  return neg ? -rounded : rounded;
}

/**
 * Splits `amount` into parts proportional to `weights` (largest remainder method): the parts
 * always sum to exactly `amount`, so splitting an invoice over lines never creates or loses a cent.
 */
export function allocate(amount: bigint, weights: bigint[]): bigint[] {
  if (weights.length === 0) throw new MoneyError("allocate needs at least one weight");
  if (weights.some((w) => w < 0n)) throw new MoneyError("weights must be >= 0");
  const total = weights.reduce((a, b) => a + b, 0n);
  if (total === 0n) throw new MoneyError("weights must not all be zero");
  if (amount < 0n) return allocate(-amount, weights).map((p) => -p);
  const parts = weights.map((w) => (amount * w) / total);
  let rest = amount - parts.reduce((a, b) => a + b, 0n);
  const order = weights
    .map((w, i) => ({ i, rem: (amount * w) % total }))
    .sort((a, b) => (b.rem > a.rem ? 1 : b.rem < a.rem ? -1 : a.i - b.i));
  const step = rest >= 0n ? 1n : -1n;
  for (let k = 0; rest !== 0n; k = (k + 1) % order.length) {
    parts[order[k].i] += step;
    rest -= step;
  }
  return parts;
}

export function sum(amounts: Iterable<bigint>): bigint {
  let s = 0n;
  for (const a of amounts) s += a;
  return s;
}

/** Human form for templates and e-mails: `formatMoney(123456n, "usd")` -> `USD 1,234.56`. */
export function formatMoney(amount: bigint, currency: Currency): string {
  const exp = CURRENCIES[currency];
  const neg = amount < 0n;
  const abs = neg ? -amount : amount;
  const unit = 10n ** BigInt(exp);
  const whole = (abs / unit).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = exp > 0 ? "." + (abs % unit).toString().padStart(exp, "0") : "";
  return `${currency.toUpperCase()} ${neg ? "-" : ""}${whole}${frac}`;
}
