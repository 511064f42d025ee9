/** usage-monitoring's rules, no I/O: the reporting period, the listing's page cursor and how usage events are decoded. */
import { HttpError } from "../../kit";
import type { UsageEventMsg } from "../../business/events";

/**
 * `from`/`to` as ISO instants; default: the current UTC month up to now. `from` must precede `to`;
 * when it does not, the error names a field the client sent: `to` when only `to` was sent (the
 * default `from` is no field of theirs), else `from`.
 */
export function usagePeriod(q: { from?: string; to?: string }, now = new Date()): { from: Date; to: Date } {
  const from = q.from ? new Date(q.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = q.to ? new Date(q.to) : new Date(now.getTime() + 1000);
  if (!(from < to)) {
    if (q.from === undefined) throw new HttpError(400, "VALIDATION_ERROR", `to must be after from (default: the start of the current UTC month, ${from.toISOString()})`, "to");
    throw new HttpError(400, "VALIDATION_ERROR", q.to === undefined ? "from must be before to (default: now)" : "from must be before to", "from");
  }
  return { from, to };
}

/**
 * Refuses a period longer than `maxDays` (the config key `key` sets it) with a 400 naming `from`:
 * a listing reads every usage event of its period (a user's, or every user's) on each page, so its
 * cost grew with any range a client sent (session 46: `from=1970-01-01` read the whole history).
 */
export function requireWithinDays(p: { from: Date; to: Date }, maxDays: number, key: string): void {
  if (p.to.getTime() - p.from.getTime() > maxDays * 86_400_000) {
    throw new HttpError(400, "VALIDATION_ERROR", `a usage listing spans at most ${maxDays} days (${key}): narrow from or to`, "from");
  }
}

/** A usage row's place in the listing's order (user, route, API key; "" for none): unique per row. */
export type UsageRowKey = [userId: string, route: string, apiKeyId: string];

/** The cursor of the page after the row `key` (a page's `nextBefore`): opaque to clients, base64url JSON. */
export function usageCursor(key: UsageRowKey): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/** The row key in a `before` cursor; a 400 naming `before` for anything a page did not answer. */
export function parseUsageCursor(before: string): UsageRowKey {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(before, "base64url").toString("utf8"));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== 3 || !key.every((k) => typeof k === "string")) {
    throw new HttpError(400, "VALIDATION_ERROR", "before must be a page's nextBefore", "before");
  }
  return [key[0], key[1], key[2]];
}

/** Decodes a batch of `platform.usage` messages; unparseable ones are returned apart (to be logged and skipped). */
export function decodeUsageEvents(values: string[]): { events: UsageEventMsg[]; unparseable: number } {
  const events: UsageEventMsg[] = [];
  let unparseable = 0;
  for (const v of values) {
    try {
      events.push(JSON.parse(v) as UsageEventMsg);
    } catch {
      unparseable++;
    }
  }
  return { events, unparseable };
}
