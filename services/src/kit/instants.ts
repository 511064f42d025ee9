/**
 * The instants a request may carry in a `date-time` field (body, params, query string): RFC 3339
 * (ajv-formats' own check) that JavaScript reads to the same instant, within the range every
 * datastore of the platform holds.
 *
 * The range is ClickHouse's `DateTime`, seconds since 1970 in a UInt32 (1970-01-01T00:00:00Z to
 * 2106-02-07T06:28:15Z), the narrowest time column any service writes or filters on. Outside it,
 * ClickHouse failed the query ("Cannot parse datetime": a 500 for `?from=0001-01-01T00:00:00Z`) or
 * wrapped the instant into another one silently. A leap second (`23:59:60`) is valid RFC 3339 but
 * `new Date()` reads it as Invalid Date, which a route would then compare as NaN.
 *
 * Installed as the `date-time` format of the validators every request passes (./app.ts), so no
 * route can forget it; the 400 names the field and gives the range (./errors.ts).
 */
import { fullFormats } from "ajv-formats/dist/formats";
import type { FormatDefinition } from "ajv";

export const EARLIEST_INSTANT = "1970-01-01T00:00:00Z";
export const LATEST_INSTANT = "2106-02-07T06:28:15Z";
const EARLIEST_MS = Date.parse(EARLIEST_INSTANT);
const LATEST_MS = Date.parse(LATEST_INSTANT);

const rfc3339 = fullFormats["date-time"] as FormatDefinition<string> & { validate: (s: string) => boolean };

/** Whether `s` is an RFC 3339 date-time the platform can store and compare. */
export function isPlatformInstant(s: string): boolean {
  if (!rfc3339.validate(s)) return false;
  const ms = Date.parse(s);
  return ms >= EARLIEST_MS && ms <= LATEST_MS; // NaN (a leap second) fails both
}

/** The `date-time` format for ajv: the check above, and ajv-formats' ordering for formatMinimum/-Maximum. */
export const platformDateTime: FormatDefinition<string> = { type: "string", validate: isPlatformInstant, compare: rfc3339.compare };

/** What the format accepts, in words: the 400's message and the OpenAPI documents say it. */
export const INSTANT_RANGE = `an RFC 3339 date-time from ${EARLIEST_INSTANT} to ${LATEST_INSTANT}`;
