/**
 * Live mode: what becomes of the orders a batch sent to Binance, and of the cancels Binance
 * answered, when the batch then fails for good (not an outage: an error the consumer answers by
 * handing the messages over again one at a time and setting aside each one that still fails). The
 * batch's transaction rolled back, so nothing records them; a retry alone would adopt a sent order
 * from Binance (te_live_sends), but the message that fails alone is set aside and never retried, and
 * its order, already at Binance, would have no te_orders row (and the held orders the batch
 * released, only their stale `held` row); an order whose cancel Binance confirmed would stay
 * `resting` until the poll found it ended at Binance (and recorded it `cancelled`: te_orders marks
 * the cancel sent, data.ts markCancelSent).
 *
 * So before the failure is handed on, what Binance acted on in the failed attempt is recorded in a
 * transaction of its own, as the batch would have: the sent orders' rows with Binance's state, their
 * fills, the events, their te_live_sends records deleted (a held one's `held` row replaced); the
 * cancels as Binance answered them (liveUpdates.ts recordCancel: the fills before it, `cancelled`,
 * the `order.cancelled` event order-management and portfolio-manager apply). The consumer's retries
 * then find them in te_orders and skip them. An order that cannot be recorded
 * even alone (the failure lies in its own row) is cancelled at Binance if it rests there, logged as
 * an error and counted (te_live_orders_unrecorded_total, metrics.ts: the TeLiveOrderUnrecorded
 * alert); once it ended at Binance, its fills and its end (`order.expired` LIVE_ORDER_UNRECORDED
 * unless the fills filled it) are published without its row (publishEnd), so order-management and
 * portfolio-manager close it and count what filled; its te_live_sends record stays, marked with that outcome (liveSends.ts markUnrecorded), so
 * that a redelivery never places it again and, once it ended at Binance, is set aside without asking
 * Binance or counting it again. A settle that meets an outage turns the failure into an
 * outage: the batch is retried later, nothing is set aside meanwhile. A process killed before the
 * settle commits leaves the te_live_sends records: the redelivery looks the orders up at Binance first.
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import type { PostgresClient } from "../../kit";
import { HandlerUnavailableError, isRetriable } from "../../trading/infra/deadLetters";
import { enqueue, type Enqueued, type OutboxRelay } from "../../trading/infra/outbox";
import type { Fill, OrderRequest } from "../../trading/types";
import { BatchWork, type LiveCancel, type SentOrder } from "./batch";
import * as data from "./data";
import type { LiveVenue } from "./live";
import { forgetLiveSends, markUnrecorded } from "./liveSends";
import { recordCancel } from "./liveUpdates";
import { outcomeEvent } from "./messages";
import type { UnrecordedOutcome } from "./metrics";

export interface SettleDeps {
  pg: PostgresClient;
  log: Logger;
  fillsTotal: Counter<string>;
  liveOrdersUnrecorded: Counter<"outcome">;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What Binance acted on in a failed attempt: the orders it answered for, the cancels it answered. */
export interface BinanceActed {
  sent: SentOrder[];
  cancels: LiveCancel[];
}

/** Recorded in one transaction (the sends first: a cancel may be of an order sent in the same attempt); what it enqueued, if anything. */
async function record(deps: SettleDeps, { sent, cancels }: BinanceActed): Promise<Enqueued | undefined> {
  let enqueued: Enqueued | undefined;
  const ids = sent.map((s) => s.order.orderId);
  await deps.pg.transaction(async (tx) => {
    const w = new BatchWork(tx, deps.fillsTotal);
    await data.deleteHeld(tx, ids); // a held order this attempt released: its execution replaces the row
    for (const s of sent) await w.record(s.order, s.report);
    await w.flush();
    for (const c of cancels) await recordCancel(w, c);
    // A cancelled order is finished in te_orders: a record an uncommitted attempt left for it (held, sent before) goes too.
    await forgetLiveSends(tx, [...ids, ...cancels.map((c) => c.order.orderId)]);
    enqueued = await enqueue(tx, "te_outbox", w.events);
  });
  return enqueued;
}

const outage = (err: unknown) =>
  new HandlerUnavailableError(`what Binance did for a failed batch (orders sent, cancels) could not be recorded; the batch waits: ${messageOf(err)}`.slice(0, 300), { cause: err });

/**
 * Records what Binance acted on in a batch that failed for good (`acted`), together, else one at a
 * time; answers what was enqueued (the caller notifies the relay). Throws HandlerUnavailableError
 * when PostgreSQL is unavailable for it (the caller rethrows that instead of the batch's failure).
 */
async function settleSentOrders(deps: SettleDeps, venue: LiveVenue, acted: BinanceActed): Promise<Enqueued[]> {
  const alone: BinanceActed[] = [...acted.sent.map((s) => ({ sent: [s], cancels: [] })), ...acted.cancels.map((c) => ({ sent: [], cancels: [c] }))];
  if (alone.length === 0) return [];
  let why: unknown;
  try {
    const e = await record(deps, acted);
    return e ? [e] : [];
  } catch (err) {
    if (isRetriable(err)) throw outage(err);
    why = err;
    if (alone.length > 1) deps.log.warn({ err: { message: messageOf(err) } }, "what Binance did for a failed batch is not recordable together; one at a time");
  }
  const enqueued: Enqueued[] = [];
  for (const one of alone) {
    if (alone.length > 1) {
      try {
        const e = await record(deps, one);
        if (e) enqueued.push(e);
        continue;
      } catch (err) {
        if (isRetriable(err)) throw outage(err);
        why = err;
      }
    }
    for (const c of one.cancels)
      deps.log.error({ orderId: c.order.orderId, binance: c.update?.state.binanceStatus ?? "unknown at Binance", err: { message: messageOf(why) } }, "live cancel Binance answered could not be recorded; the poll reports the order's end");
    for (const s of one.sent) {
      const e = await unrecorded(deps, venue, s, why);
      if (e) enqueued.push(e);
    }
  }
  return enqueued;
}

/**
 * What a failed live attempt hands on: its error, once what Binance acted on in it (`work`) is
 * recorded if the error is a failure for good (the relay told of the events), or the settle's outage.
 */
export async function settleFailedAttempt(deps: SettleDeps & { relay: OutboxRelay }, venue: LiveVenue, err: unknown, work?: BinanceActed): Promise<unknown> {
  if (isRetriable(err) || !work) return err;
  return settleSentOrders(deps, venue, work).then(
    (enqueued) => (enqueued.forEach((e) => deps.relay.notify(e)), err),
    (outageOfSettle: unknown) => outageOfSettle,
  );
}

/** The reason order-management records for a live order that ended at Binance without a te_orders row of its own. */
export const UNRECORDED_END_REASON = "LIVE_ORDER_UNRECORDED";

/** What became of an unrecorded order at Binance once it ended there: its status and every fill Binance reported for it. */
interface EndedAtBinance {
  status: string;
  fills: Fill[];
}

/**
 * The end of an order that ended at Binance and has no te_orders row, told to order-management and
 * portfolio-manager through te_outbox in a transaction of its own that needs no such row: its fills
 * (te_fills, keyed by fill id: te_positions moves with them; their `fill` events) and, unless the
 * fills filled it, `order.expired` with UNRECORDED_END_REASON (order-management's state machine
 * takes `expire` from every open state: accepted, partially_filled, pending_cancel). Should the
 * fills not be writable either, the event goes alone and the fills are named in the error log for
 * reconciliation. Throws HandlerUnavailableError when PostgreSQL is unavailable for it.
 */
async function publishEnd(deps: SettleDeps, o: OrderRequest, ended: EndedAtBinance): Promise<{ enqueued?: Enqueued; published: string; fillsError?: string }> {
  const write = async (fills: Fill[]) => {
    let enqueued: Enqueued | undefined;
    const end = fills.length > 0 && ended.status === "filled" ? [] : [outcomeEvent(o, "order.expired", UNRECORDED_END_REASON)];
    await deps.pg.transaction(async (tx) => {
      const w = new BatchWork(tx, deps.fillsTotal);
      w.fills.push(...fills);
      await w.flush();
      w.events.push(...end);
      enqueued = await enqueue(tx, "te_outbox", w.events);
    });
    return { enqueued, published: [fills.length > 0 ? `${fills.length} fill(s)` : "", ...end.map(() => `order.expired ${UNRECORDED_END_REASON}`)].filter(Boolean).join(", ") };
  };
  let fillsError: string | undefined;
  if (ended.fills.length > 0) {
    try {
      return await write(ended.fills);
    } catch (err) {
      if (isRetriable(err)) throw outage(err);
      fillsError = messageOf(err);
    }
  }
  try {
    return { ...(await write([])), fillsError };
  } catch (err) {
    if (isRetriable(err)) throw outage(err);
    return { published: `nothing: ${messageOf(err)}`, fillsError };
  }
}

/** The fills Binance reported that are in no te_fills row (publishEnd could not write them), for the error log: reconciled by hand. */
const fillsUnrecorded = (end: { fillsError?: string } | undefined, ended: EndedAtBinance | undefined) =>
  end?.fillsError !== undefined ? { fillsUnrecorded: ended?.fills.map((f) => ({ fillId: f.fillId, side: f.side, quantity: f.quantity, price: f.price, fee: f.fee })), fillsError: end.fillsError } : {};

/** The cancel of an unrecorded order resting at Binance: its outcome and its end there. Binance not answering throws (live.ts cancel). */
async function cancelAtBinance(venue: LiveVenue, o: OrderRequest): Promise<{ outcome: UnrecordedOutcome; cancel: string; ended: EndedAtBinance }> {
  const u = await venue.cancel(o);
  const status = u?.state.status ?? "unknown at Binance";
  return { outcome: u?.state.status === "cancelled" ? "cancelled" : "not_open", cancel: status, ended: { status, fills: u?.state.fills ?? [] } };
}

/**
 * A sent order whose own row cannot be written: at least it does not stay open at Binance, where no
 * poll sees it, nor open in order-management. Once it ended at Binance its end is published
 * (publishEnd: before the mark, so that a retry after an outage publishes it still); then its
 * te_live_sends record is marked with the outcome (liveSends.ts markUnrecorded) and the order counted
 * once, the first time (a redelivery that cancels a `cancel_failed` one re-marks it, and publishes its end).
 */
async function unrecorded(deps: SettleDeps, venue: LiveVenue, s: SentOrder, why: unknown): Promise<Enqueued | undefined> {
  let outcome: UnrecordedOutcome = "not_open";
  let cancel = "not open";
  let ended: EndedAtBinance | undefined = { status: s.report.status, fills: s.report.fills };
  if (s.report.status === "resting")
    ({ outcome, cancel, ended } = await cancelAtBinance(venue, s.order).catch((e: unknown) => ({ outcome: "cancel_failed" as const, cancel: `cancel failed: ${messageOf(e)}`, ended: undefined })));
  // cancel_failed: it may still be open (and fill) at Binance; its end waits for the retry that cancels it.
  const end = ended && (await publishEnd(deps, s.order, ended));
  let before: UnrecordedOutcome | undefined;
  try {
    before = await markUnrecorded(deps.pg, s.order, outcome);
  } catch (err) {
    if (isRetriable(err)) throw outage(err); // the retry looks the order up at Binance and settles it again
    cancel += `; te_live_sends not marked: ${messageOf(err)}`;
  }
  if (before === undefined) deps.liveOrdersUnrecorded.inc({ outcome });
  deps.log.error(
    {
      orderId: s.order.orderId, binance: s.report.status, cancel, outcome, before,
      published: end?.published ?? "nothing: it may be open at Binance",
      // Fills Binance reported that are in no te_fills row: for reconciliation by hand.
      ...fillsUnrecorded(end, ended),
      err: { message: messageOf(why) },
    },
    "live order sent to Binance could not be recorded in te_orders; te_live_sends keeps it marked with its outcome",
  );
  return end?.enqueued;
}

/**
 * The live poll's retry of the cancel of an order marked `cancel_failed` (leftSent.ts), as a
 * redelivery's (unrecorded, above) once Binance answers: its end published (publishEnd; the events
 * keyed by fill and order id, so a redelivery doing the same publishes nothing twice), then the mark
 * moved to `cancelled` or `not_open`, only from `cancel_failed` (a redelivery may have moved it
 * first); not counted again (it was counted when first marked). A cancel Binance does not answer
 * throws, the mark left as it is (the poll asks again later); so does PostgreSQL unavailable.
 */
export async function retryUnrecordedCancel(deps: SettleDeps, venue: LiveVenue, o: OrderRequest): Promise<Enqueued | undefined> {
  const { outcome, cancel, ended } = await cancelAtBinance(venue, o);
  const end = await publishEnd(deps, o, ended);
  const before = await markUnrecorded(deps.pg, o, outcome, "cancel_failed");
  deps.log.error(
    { orderId: o.orderId, cancel, outcome, before, published: end.published, ...fillsUnrecorded(end, ended) },
    "live order sent to Binance and never recorded in te_orders: the poll's retry of its cancel ended it there; te_live_sends keeps it marked with its outcome",
  );
  return end.enqueued;
}
