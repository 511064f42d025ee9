/**
 * Whether a JSON number literal says more than the double JSON.parse makes of it holds: the value a
 * service stores or compares would then not be the value sent. Three cases (the first two I-JSON,
 * RFC 7493 2.2):
 * - an integer literal (no fraction, no exponent) beyond Number.MAX_SAFE_INTEGER: 9007199254740993
 *   parses to ...992;
 * - a literal of more than 17 significant digits: 1.00000000000000000001 parses to 1. Seventeen
 *   digits identify every double, so a client speaking doubles (JSON.stringify, Python's repr, Go,
 *   Java) never writes more; a longer literal is a decimal meant exactly, to be sent as a string.
 * - a literal that is not zero whose double is 0 (`1e-400`, `-2.5E-999`): below the smallest double
 *   (5e-324), it was taken as 0 where 0 is allowed (session 51, tests/hostile/session-51.test.ts).
 * Literals of 17 digits or fewer with a fraction or an exponent are the writer's double and taken
 * (a subnormal such as 5e-324 included: a serialiser writes it so).
 *
 * Not compared with the double's exact value: a literal spelling a double's binary expansion out in
 * full (0.1000000000000000055511151231257827021181583404541015625, up to 767 digits) would be
 * exact, but comparing costs 10-15 µs a literal with BigInt (46-415 µs with decimal.js), a quarter
 * of a second of event loop for a 1 MiB body of them; no serialiser of doubles writes that form.
 */

/** The number of significant digits of a literal's mantissa: leading and trailing zeros do not count. */
export function significantDigits(literal: string): number {
  let end = literal.search(/[eE]/);
  if (end < 0) end = literal.length;
  let first = 0;
  while (first < end && !isNonZeroDigit(literal.charCodeAt(first))) first++;
  if (first === end) return 0;
  let last = end - 1;
  while (!isNonZeroDigit(literal.charCodeAt(last))) last--;
  // A decimal point between the first and the last significant digit is no digit.
  const dot = literal.indexOf(".", first);
  return last - first + 1 - (dot >= 0 && dot < last ? 1 : 0);
}

const isNonZeroDigit = (c: number) => c >= 49 && c <= 57;

/**
 * Whether the JSON number literal `literal` (as the text holds it, without its sign) is not carried
 * exactly by the double JSON.parse makes of it. A literal beyond the double range is the range
 * check's to answer (false here).
 */
export function beyondDouble(literal: string): boolean {
  const n = Number(literal);
  if (!Number.isFinite(n)) return false;
  if (n === 0) return significantDigits(literal) > 0;
  if (/^\d+$/.test(literal)) return !Number.isSafeInteger(n);
  return significantDigits(literal) > 17;
}
