/** usage-monitoring's rules, no I/O: the reporting period and how usage events are decoded. */
import { HttpError } from "../../kit";
import type { UsageEventMsg } from "../../business/events";

/** `from`/`to` as ISO instants; default: the current UTC month up to now. `from` must precede `to`. */
export function usagePeriod(q: { from?: string; to?: string }, now = new Date()): { from: Date; to: Date } {
  const from = q.from ? new Date(q.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = q.to ? new Date(q.to) : new Date(now.getTime() + 1000);
  if (!(from < to)) throw new HttpError(400, "VALIDATION_ERROR", "from must be before to", "from");
  return { from, to };
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
