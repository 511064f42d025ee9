/**
 * Live mode: what becomes of the orders a batch sent to Binance when the batch then fails for good
 * (not an outage: an error the consumer answers by handing the messages over again one at a time and
 * setting aside each one that still fails). The batch's transaction rolled back, so nothing records
 * those orders; a retry alone would adopt them from Binance (te_live_sends), but the message that
 * fails alone is set aside and never retried, and its order, already at Binance, would have no
 * te_orders row (and the held orders the batch released, only their stale `held` row).
 *
 * So before the failure is handed on, the orders Binance answered for in the failed attempt are
 * recorded in a transaction of their own, as the batch would have: their rows with Binance's state,
 * their fills, the events, their te_live_sends records deleted (a held one's `held` row replaced).
 * The consumer's retries then find them in te_orders and skip them. An order that cannot be recorded
 * even alone (the failure lies in its own row) is cancelled at Binance if it rests there, logged as
 * an error and counted (te_live_orders_unrecorded_total, metrics.ts: the TeLiveOrderUnrecorded
 * alert); its te_live_sends record stays. A settle that meets an outage turns the failure into an
 * outage: the batch is retried later, nothing is set aside meanwhile. A process killed before the
 * settle commits leaves the te_live_sends records: the redelivery looks the orders up at Binance first.
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import type { PostgresClient } from "../../kit";
import { HandlerUnavailableError, isRetriable } from "../../trading/infra/deadLetters";
import { enqueue, type Enqueued } from "../../trading/infra/outbox";
import { BatchWork, type SentOrder } from "./batch";
import * as data from "./data";
import type { LiveVenue } from "./live";
import { forgetLiveSends } from "./liveSends";
import type { UnrecordedOutcome } from "./metrics";

export interface SettleDeps {
  pg: PostgresClient;
  log: Logger;
  fillsTotal: Counter<string>;
  liveOrdersUnrecorded: Counter<"outcome">;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The sent orders recorded in one transaction: what it enqueued (for the relay), if anything. */
async function record(deps: SettleDeps, sent: SentOrder[]): Promise<Enqueued | undefined> {
  let enqueued: Enqueued | undefined;
  const ids = sent.map((s) => s.order.orderId);
  await deps.pg.transaction(async (tx) => {
    const w = new BatchWork(tx, deps.fillsTotal);
    await data.deleteHeld(tx, ids); // a held order this attempt released: its execution replaces the row
    for (const s of sent) await w.record(s.order, s.report);
    await w.flush();
    await forgetLiveSends(tx, ids);
    enqueued = await enqueue(tx, "te_outbox", w.events);
  });
  return enqueued;
}

const outage = (err: unknown) =>
  new HandlerUnavailableError(`live orders sent by a failed batch could not be recorded; the batch waits: ${messageOf(err)}`.slice(0, 300), { cause: err });

/**
 * Records the orders a batch that failed for good sent to Binance (`sent`), together, else one at a
 * time; answers what was enqueued (the caller notifies the relay). Throws HandlerUnavailableError
 * when PostgreSQL is unavailable for it (the caller rethrows that instead of the batch's failure).
 */
export async function settleSentOrders(deps: SettleDeps, venue: LiveVenue, sent: SentOrder[]): Promise<Enqueued[]> {
  if (sent.length === 0) return [];
  let why: unknown;
  try {
    const e = await record(deps, sent);
    return e ? [e] : [];
  } catch (err) {
    if (isRetriable(err)) throw outage(err);
    why = err;
    if (sent.length > 1) deps.log.warn({ err: { message: messageOf(err) } }, "live orders of a failed batch not recordable together; one at a time");
  }
  const enqueued: Enqueued[] = [];
  for (const s of sent) {
    if (sent.length > 1) {
      try {
        const e = await record(deps, [s]);
        if (e) enqueued.push(e);
        continue;
      } catch (err) {
        if (isRetriable(err)) throw outage(err);
        why = err;
      }
    }
    // Its own row cannot be written: at least it does not stay open at Binance, where no poll sees it.
    let outcome: UnrecordedOutcome = "not_open";
    let cancel = "not open";
    if (s.report.status === "resting") {
      [outcome, cancel] = await venue.cancel(s.order).then(
        (u): [UnrecordedOutcome, string] => [u?.state.status === "cancelled" ? "cancelled" : "not_open", u?.state.status ?? "unknown at Binance"],
        (e: unknown): [UnrecordedOutcome, string] => ["cancel_failed", `cancel failed: ${messageOf(e)}`],
      );
    }
    deps.liveOrdersUnrecorded.inc({ outcome });
    deps.log.error({ orderId: s.order.orderId, binance: s.report.status, cancel, err: { message: messageOf(why) } }, "live order sent to Binance could not be recorded in te_orders; its te_live_sends record stays");
  }
  return enqueued;
}
