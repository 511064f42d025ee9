/**
 * Live mode: what Binance says of orders already there (a cancel's answer, a poll's) recorded in
 * an engine transaction: their new fills (evented), their te_orders state, then their outcome event.
 * Used by the batch (a cancel request), the poll (engine.ts) and the settle of a failed batch (sentOrders.ts).
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import type { PostgresClient } from "../../kit";
import { enqueue, type Enqueued } from "../../trading/infra/outbox";
import type { ExecutionReport } from "../../trading/paperExchange";
import type { OrderRequest } from "../../trading/types";
import { BatchWork, type LiveCancel } from "./batch";
import * as data from "./data";
import type { LiveUpdate, LiveVenue } from "./live";
import { forgetLiveSends, heldLeftSent } from "./liveSends";
import { cancelledEvent, outcomeEvent } from "./messages";

/**
 * A live order the kill switch would hold (arriving, or held and not released) that an attempt
 * which never committed may have sent (its te_live_sends record): an order at Binance cannot be
 * held, so Binance is asked. If Binance has it, it is adopted as Binance says (its `held` row
 * replaced; resting there, it is tracked and polled, and the sweep's cancel reaches Binance;
 * CANCELED after a cancel of ours, `cancelled`) and true is answered; if Binance never had it
 * (-2013), it may be held as any other: its record is forgotten with the batch (`sent` no longer
 * has it), false. No answer is an outage (the batch is retried), and so is a -2013 while a placement
 * it sent may still land at Binance (recvWindow after te_live_sends.sent_at: live.ts lookUp). One
 * marked unrecorded is left as it is.
 */
export async function adoptIfSent(w: BatchWork, o: OrderRequest, venue: LiveVenue): Promise<boolean> {
  const before = w.liveBefore;
  if (!before?.sent.has(o.orderId) || before.unrecorded.has(o.orderId)) return false;
  const report = await venue.lookUp(o, before.cancelSent.has(o.orderId), before.lastSentAt.get(o.orderId));
  if (report === undefined) {
    before.sent.delete(o.orderId);
    return false;
  }
  await data.deleteHeld(w.tx, [o.orderId]);
  await w.recordSent(o, report);
  return true;
}

/**
 * A live cancel: Binance's answer is recorded (and kept in `w.cancels`: should the batch fail for
 * good, sentOrders.ts records it on its own, since Binance has acted on it). No answer throws.
 */
export async function cancelLive(w: BatchWork, o: OrderRequest, venue: LiveVenue): Promise<void> {
  const answered: LiveCancel = { order: o, update: await venue.cancel(o) };
  w.cancels.push(answered);
  await recordCancel(w, answered);
}

/**
 * CANCELED: the fills before it, then the cancel confirmed for the rest; FILLED: the fills, no
 * confirmation (order-management's state machine: pending_cancel + fill -> filled); an order
 * Binance never had is cancelled here.
 */
export async function recordCancel(w: BatchWork, { order, update }: LiveCancel): Promise<void> {
  if (update) return applyLive(w, [update]);
  const pulled = await data.cancelResting(w.tx, order.orderId);
  w.events.push(cancelledEvent(order, pulled?.remaining ?? order.quantity, "CANCELLED_ON_REQUEST"));
}

/**
 * Records what Binance says of live orders: their fills (the new ones evented), state, then outcome.
 * `polled`: a poll's CANCELED is the platform's cancel only if te_orders says one was sent (data.ts
 * updateLiveOrders: `cancelled`), else the order ended at Binance on its own (`expired`).
 */
export async function applyLive(w: BatchWork, updates: LiveUpdate[], { polled = false } = {}): Promise<void> {
  w.fills.push(...updates.flatMap((u) => u.state.fills));
  const fresh = await w.flush();
  w.gate.filled(updates.flatMap((u) => u.state.fills).filter((f) => fresh.has(f.fillId)));
  const rows = updates.map(({ order, state }) => ({ orderId: order.orderId, status: state.status, remaining: state.remaining, newFills: state.fills.filter((f) => fresh.has(f.fillId)).length }));
  const written = await data.updateLiveOrders(w.tx, rows, { polled });
  for (const { order, state } of updates) {
    const status = written.get(order.orderId);
    if (status === "cancelled") w.events.push(cancelledEvent(order, state.remaining, "CANCELLED_ON_REQUEST"));
    if (status === "expired") w.events.push(outcomeEvent(order, "order.expired", `BINANCE_${state.binanceStatus}`));
  }
}

/** A poll's updates recorded in a transaction of their own; what it enqueued (for the relay), if anything. */
export async function recordPolled(deps: { pg: PostgresClient; fillsTotal: Counter<string> }, updates: LiveUpdate[]): Promise<Enqueued | undefined> {
  let enqueued: Enqueued | undefined;
  await deps.pg.transaction(async (tx) => {
    // Binance's answers about orders already there are recorded whatever the trading state.
    const w = new BatchWork(tx, deps.fillsTotal);
    await applyLive(w, updates, { polled: true });
    enqueued = await enqueue(tx, "te_outbox", w.events);
  });
  return enqueued;
}

/** What the poll made of the held orders an uncommitted attempt may have sent (adoptHeldSent). */
export interface HeldLookedUp {
  enqueued?: Enqueued;
  /** Adopted from Binance: no longer held (resting ones are tracked by the venue now). */
  adopted: string[];
  /** No longer to look up: adopted, never at Binance (held, record gone), or with no record left. Not those Binance did not answer about. */
  settled: string[];
}

/**
 * The poll's adoptIfSent: `held` orders an attempt that never committed may have sent (it released
 * them, then failed or was killed; their owner halted again) are looked up at Binance without waiting
 * for another batch, since their fills there would otherwise wait for one. Binance is asked outside
 * any transaction; what it answered is recorded in a transaction of their own, as the batch records
 * an adoption: the `held` row replaced by Binance's state (only a row still held), the fills and
 * events enqueued in te_outbox, the te_live_sends record deleted (a cancel sent moves to te_orders).
 * One Binance never had (-2013) stays held and its record goes; one Binance does not answer about
 * is left to the next poll (logged), and so is one whose -2013 came while a placement of it may
 * still land (recvWindow after its last one: live.ts lookUp). No kill-switch lock: nothing is sent, and Binance's facts are
 * recorded whatever the trading state, as the poll records fills. Throws if the recording fails.
 */
export async function adoptHeldSent(deps: { pg: PostgresClient; fillsTotal: Counter<string>; log: Logger }, venue: LiveVenue, held: OrderRequest[]): Promise<HeldLookedUp> {
  const left = await heldLeftSent(deps.pg, held.map((o) => o.orderId));
  const found: { order: OrderRequest; report: ExecutionReport }[] = [];
  const absent: string[] = [];
  const settled = held.filter((o) => !left.has(o.orderId)).map((o) => o.orderId);
  for (const o of held.filter((h) => left.has(h.orderId))) {
    try {
      const sent = left.get(o.orderId);
      const report = await venue.lookUp(o, sent?.cancelSent === true, sent?.lastSentAt);
      if (report) found.push({ order: o, report });
      else absent.push(o.orderId);
    } catch (err) {
      deps.log.warn({ orderId: o.orderId, err: { message: err instanceof Error ? err.message : String(err) } }, "live poll: held order that may be at Binance unanswered; next poll");
    }
  }
  if (found.length + absent.length === 0) return { adopted: [], settled };
  let enqueued: Enqueued | undefined;
  let adopted: string[] = [];
  await deps.pg.transaction(async (tx) => {
    const w = new BatchWork(tx, deps.fillsTotal);
    const taken = await data.deleteHeld(tx, found.map((f) => f.order.orderId));
    for (const f of found) if (taken.has(f.order.orderId)) await w.record(f.order, f.report);
    await w.flush();
    await forgetLiveSends(tx, [...taken, ...absent]);
    enqueued = await enqueue(tx, "te_outbox", w.events);
    adopted = [...taken];
  });
  return { enqueued, adopted, settled: [...settled, ...found.map((f) => f.order.orderId), ...absent] };
}
