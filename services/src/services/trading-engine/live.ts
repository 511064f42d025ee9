/**
 * trading-engine's live venue (TRADING_MODE=live): orders go to Binance, never to the PaperExchange,
 * and a live order resting at Binance is never paper-filled by a bar. Binance alone says what became
 * of it; the venue asks (no I/O but Binance: the engine records the answers in its batch transaction).
 *
 *   - execute: placed with the platform's order id as the client order id, reconciled on an unknown
 *     outcome (adapter.ts); fills from the FULL answer, or the order's trades when the order was
 *     adopted from a query. An outcome that stays unknown is an outage (HandlerUnavailableError):
 *     the consumer retries the batch. An order an earlier attempt may have sent (the engine's
 *     te_live_sends record, liveSends.ts: a failed batch, or a process killed before its COMMIT) is
 *     looked up at Binance first and adopted if Binance knows it; sent only if Binance says it does not.
 *     Adopted CANCELED, it is `cancelled` if a cancel of it was sent (te_live_sends.cancel_sent_at), else `expired`.
 *     Each placement is recorded before it is signed (te_live_sends.sent_at, its timestamp); Binance
 *     may apply it up to recvWindow later, so a -2013 for an order whose last placement may still
 *     land (adapter.ts mayStillLand: recvWindow + 1 s) is no answer: an outage, the batch retried.
 *   - lookUp: such an order the kill switch holds: adopted if Binance has it (an order at Binance
 *     cannot be held), held if Binance never had it (a -2013 while its placement may still land: no answer).
 *   - cancel: DELETE /api/v3/order by client order id. CANCELED confirms the cancel for what Binance
 *     did not execute (with the fills before it); already FILLED (-2011, then queried) reports the
 *     fills instead; no answer (5xx, timeout, any other error) confirms nothing and is an outage.
 *   - poll: the orders resting at Binance (one GET /api/v3/openOrders per symbol; an order no longer
 *     open, or one that executed more, is queried with its trades): fills since the last look, and
 *     the end of an order Binance finished (filled, expired, or CANCELED: the recording calls that
 *     `cancelled` only if te_orders says the platform sent a cancel, liveUpdates.ts applyLive, else
 *     `expired`). Nothing is asked while no live order rests.
 */
import type { Logger } from "pino";
import { toBinanceOrder, type BinanceOrder, type BinanceTradingClient } from "../../trading/binance/adapter";
import { BinanceApiError, outcomeUnknown } from "../../trading/binance/errors";
import { liveOrderState, type LiveOrderState } from "../../trading/binance/fills";
import { D } from "../../trading/decimal";
import { storableText } from "../../kit";
import { HandlerUnavailableError } from "../../trading/infra/deadLetters";
import type { ExecutionReport, RestingOrder } from "../../trading/paperExchange";
import type { OrderRequest } from "../../trading/types";

export interface LiveOptions {
  client: BinanceTradingClient;
  quoteAsset: string;
  /** How often the orders resting at Binance are polled for fills (ms; default 2000). */
  pollMs?: number;
}

/** What Binance says became of a live order: recorded in te_orders and reported (fills first). */
export interface LiveUpdate {
  order: OrderRequest;
  state: LiveOrderState;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
const unavailable = (what: string, err: unknown) => new HandlerUnavailableError(`binance: ${what}: ${messageOf(err)}`.slice(0, 300), { cause: err });

export class LiveVenue {
  /** The live orders resting at Binance, as te_orders records them. */
  private open = new Map<string, RestingOrder>();
  private poller?: NodeJS.Timeout;
  private polling?: Promise<void>;
  constructor(
    private readonly opts: LiveOptions,
    private readonly log: Logger,
  ) {}

  /** The resting live orders as loaded from te_orders (on start and after a failed transaction). */
  restore(rows: RestingOrder[]): void {
    this.open = new Map(rows.map((r) => [r.order.orderId, { ...r }]));
  }
  resting(): RestingOrder[] {
    return [...this.open.values()].map((r) => ({ ...r }));
  }
  /** The same, as tracked (not copies: read them, do not change them). */
  openOrders(): Iterable<RestingOrder> {
    return this.open.values();
  }
  get openCount(): number {
    return this.open.size;
  }
  /** Runs `poll` now and every `pollMs` (default 2000); a poll still running is not doubled. */
  startPolling(poll: () => Promise<void>): void {
    if (this.poller) return;
    const tick = () => {
      this.polling ??= poll().finally(() => (this.polling = undefined));
    };
    tick();
    this.poller = setInterval(tick, this.opts.pollMs ?? 2000);
    this.poller.unref();
  }
  async stopPolling(): Promise<void> {
    clearInterval(this.poller);
    this.poller = undefined;
    await this.polling;
  }

  /**
   * `sentBefore`: an attempt that never committed may have sent it; Binance is asked before sending.
   * `cancelSent`: a cancel of it was sent too (te_live_sends, migration 0401): found CANCELED, it is `cancelled`.
   * `lastSentAt`: that attempt's last placement's timestamp, if it sent one (te_live_sends.sent_at).
   * `recordPlacement`: records each placement's timestamp before it is signed (liveSends.ts); a failure sends nothing.
   */
  async execute(
    o: OrderRequest,
    { sentBefore, cancelSent, lastSentAt, recordPlacement }: { sentBefore: boolean; cancelSent: boolean; lastSentAt?: number; recordPlacement: (timestamp: number) => Promise<void> },
  ): Promise<ExecutionReport> {
    const client = this.opts.client;
    const beforeSend = async (timestamp: number) => {
      await recordPlacement(timestamp).catch((err: unknown) => {
        throw unavailable(`the placement of ${o.orderId} could not be recorded; not sent, the batch waits`, err);
      });
      // Signed with that timestamp: a record that took half of recvWindow would leave Binance refusing the send (-1021), a rejection.
      const took = client.now() - timestamp;
      if (took > client.recvWindowMs / 2) throw unavailable(`the placement of ${o.orderId} was recorded after ${took} ms; not sent, the batch waits`, "slow record");
    };
    let bo: BinanceOrder;
    try {
      bo = (await client.placeOrderReconciled(toBinanceOrder(o), { lookFirst: sentBefore, lastSentAt, beforeSend })).order;
    } catch (err) {
      if (err instanceof HandlerUnavailableError) throw err; // nothing was sent: not a refusal
      if (outcomeUnknown(err)) throw unavailable(`order ${o.orderId} may be live or filled; the batch waits and is reconciled again`, err);
      // Binance's words go into te_outbox's jsonb: cut at 200, with no U+0000 nor half of a pair left to fail the batch for good.
      return { orderId: o.orderId, status: "rejected", fills: [], remaining: o.quantity, reason: storableText(`BINANCE: ${messageOf(err)}`.slice(0, 200)) };
    }
    return this.reportOf(o, bo, cancelSent);
  }

  /**
   * An order an attempt that never committed may have sent, which may not be sent now (the kill
   * switch holds it): what Binance made of it (adopted: resting there, tracked and polled from now
   * on), or undefined when Binance never had it (-2013). No answer is an outage.
   */
  async lookUp(o: OrderRequest, cancelSent: boolean, lastSentAt?: number): Promise<ExecutionReport | undefined> {
    const inFlight = this.opts.client.mayStillLand(lastSentAt); // read before the lookup is signed
    let bo: BinanceOrder | null;
    try {
      bo = await this.opts.client.queryOrder(o.symbol, o.orderId);
    } catch (err) {
      throw unavailable(`order ${o.orderId} may be at Binance and is not queryable; the batch waits`, err);
    }
    if (bo === null && inFlight)
      throw unavailable(`order ${o.orderId} not at Binance yet, but its placement signed at ${new Date(lastSentAt ?? 0).toISOString()} may still land; asked again later`, "-2013 within recvWindow");
    return bo === null ? undefined : this.reportOf(o, bo, cancelSent);
  }

  /** An order Binance has, as the engine records it (one resting there is tracked from now on). */
  private async reportOf(o: OrderRequest, bo: BinanceOrder, cancelSent: boolean): Promise<ExecutionReport> {
    const s = await this.stateOf(o, bo);
    if (s.status === "resting") {
      this.open.set(o.orderId, { order: o, remaining: s.remaining, fillSeq: s.fills.length });
      return { orderId: o.orderId, status: "resting", fills: s.fills, remaining: s.remaining };
    }
    if (s.status === "filled") return { orderId: o.orderId, status: "filled", fills: s.fills, remaining: "0" };
    if (s.status === "cancelled" && cancelSent) return { orderId: o.orderId, status: "cancelled", fills: s.fills, remaining: s.remaining };
    const ioc = o.type === "limit" && o.timeInForce === "IOC" && s.binanceStatus === "EXPIRED";
    return { orderId: o.orderId, status: "expired", fills: s.fills, remaining: s.remaining, reason: ioc ? "IOC_NOT_FILLED" : `BINANCE_${s.binanceStatus}` };
  }

  /** A cancel request for a live order te_orders has resting; undefined when Binance never had the order. */
  async cancel(o: OrderRequest): Promise<LiveUpdate | undefined> {
    let bo: BinanceOrder | null;
    try {
      bo = await this.opts.client.cancelOrder(o.symbol, o.orderId);
    } catch (err) {
      // -2011 "Unknown order sent.": not open any more (filled, or ended otherwise): what did it become?
      if (!(err instanceof BinanceApiError && err.code === -2011)) throw unavailable(`cancel of ${o.orderId} unanswered; nothing confirmed, retried`, err);
      try {
        bo = await this.opts.client.queryOrder(o.symbol, o.orderId);
      } catch (e) {
        throw unavailable(`order ${o.orderId} not cancellable and not queryable; retried`, e);
      }
    }
    if (bo === null) {
      this.open.delete(o.orderId);
      return undefined;
    }
    const state = await this.stateOf(o, bo);
    if (state.status === "resting") throw unavailable(`order ${o.orderId} still open after its cancel; retried`, bo.status);
    this.open.delete(o.orderId);
    return { order: o, state };
  }

  /**
   * The resting live orders Binance has moved on since the last look. Failures are logged and left
   * to the next poll (nothing is reported for an order Binance did not answer about).
   */
  async poll(): Promise<LiveUpdate[]> {
    const bySymbol = new Map<string, RestingOrder[]>();
    for (const r of this.open.values()) bySymbol.set(r.order.symbol, [...(bySymbol.get(r.order.symbol) ?? []), r]);
    const updates: LiveUpdate[] = [];
    for (const [symbol, tracked] of bySymbol) {
      let listed: Map<string, BinanceOrder>;
      try {
        listed = new Map((await this.opts.client.openOrders(symbol)).map((b) => [b.clientOrderId, b]));
      } catch (err) {
        this.log.warn({ symbol, err: { message: messageOf(err) } }, "live poll: open orders unanswered; next poll");
        continue;
      }
      for (const r of tracked) {
        const reported = D(r.order.quantity).minus(r.remaining);
        const open = listed.get(r.order.orderId);
        if (open && D(open.executedQty).lte(reported)) continue; // open, nothing executed since
        try {
          const bo = open ?? (await this.opts.client.queryOrder(symbol, r.order.orderId));
          if (bo === null) {
            this.log.warn({ orderId: r.order.orderId }, "live poll: Binance does not know a resting order; still tracked");
            continue;
          }
          const s = await liveOrderState(this.opts.client, r.order, bo, this.opts.quoteAsset);
          if (s.status === "resting" && D(s.executed).lte(reported)) continue;
          // CANCELED as Binance says it: whether the platform asked for it is te_orders' to say (applyLive).
          updates.push({ order: r.order, state: s });
        } catch (err) {
          this.log.warn({ orderId: r.order.orderId, err: { message: messageOf(err) } }, "live poll: order unanswered; next poll");
        }
      }
    }
    return updates;
  }

  /** The poll's updates are committed: ended orders leave the tracking, the others keep their new remaining. */
  settled(updates: LiveUpdate[]): void {
    for (const u of updates) {
      const r = this.open.get(u.order.orderId);
      if (!r) continue;
      if (u.state.status !== "resting") this.open.delete(u.order.orderId);
      else this.open.set(u.order.orderId, { ...r, remaining: u.state.remaining, fillSeq: u.state.fills.length });
    }
  }

  private async stateOf(o: OrderRequest, bo: BinanceOrder): Promise<LiveOrderState> {
    try {
      return await liveOrderState(this.opts.client, o, bo, this.opts.quoteAsset);
    } catch (err) {
      throw unavailable(`trades of ${o.orderId} unanswered; the batch waits`, err);
    }
  }
}
