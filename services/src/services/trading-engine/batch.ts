/**
 * What one engine transaction (a batch of commands, or a live poll) accumulates before writing it in
 * as few statements as possible: the orders and fills to record, the events to enqueue, the bars.
 */
import type { Counter } from "prom-client";
import type { PoolClient } from "pg";
import { executeWith, type CommitWith } from "../../kit/datastores/postgres";
import { outboxInsert, type Enqueued, type OutboxEvent } from "../../trading/infra/outbox";
import type { ExecutionReport, PaperExchange } from "../../trading/paperExchange";
import type { Bar, Fill, OrderRequest } from "../../trading/types";
import * as data from "./data";
import { OPEN_GATE, type FillGate } from "./halts";
import type { LiveUpdate } from "./live";
import type { LiveSendsBefore } from "./liveSends";
import { cancelledEvent, fillEvent, outcomeEvent } from "./messages";

/** A live order as Binance answered its placement (or its lookup) in this attempt. */
export interface SentOrder {
  order: OrderRequest;
  report: ExecutionReport;
}

/** A live cancel as Binance answered it in this attempt; no `update`: Binance never had the order. */
export interface LiveCancel {
  order: OrderRequest;
  update?: LiveUpdate;
}

/** The te_orders row of an order as Binance (or the paper exchange) answered for it. */
export const rowOf = (o: OrderRequest, report: ExecutionReport): data.EngineOrderRow => ({
  order: o, status: report.status === "partially_filled" ? "resting" : report.status, remaining: report.remaining, fillSeq: report.fills.length,
});

export class BatchWork {
  events: OutboxEvent[] = [];
  rows: data.EngineOrderRow[] = [];
  fills: Fill[] = [];
  /** The newest bar per symbol of this batch, saved once at the end. */
  newBars = new Map<string, Bar>();
  /**
   * Live: every order Binance answered for in this attempt (placed, adopted or refused). Should the
   * batch fail for good, they are recorded on their own (sentOrders.ts) before the consumer may set it aside.
   */
  sent: SentOrder[] = [];
  /** Live: every cancel Binance answered in this attempt (it is done there), recorded on their own as `sent` is. */
  cancels: LiveCancel[] = [];
  constructor(
    readonly tx: PoolClient,
    private readonly fillsTotal: Counter<string>,
    /** The orders already recorded (executed, held or cancelled): a redelivery is skipped. */
    readonly known = new Set<string>(),
    /** Open time of the last bar per symbol as this batch advanced it (read once for the batch, locked). */
    readonly lastOpenTime = new Map<string, number>(),
    /** What this batch may fill or send (the kill switch, halts.ts), told of every fill it makes. */
    readonly gate: FillGate = OPEN_GATE,
    /** Live: the orders an attempt that never committed may have sent to Binance, the unrecorded ones' outcome (te_live_sends). */
    readonly liveBefore?: LiveSendsBefore,
  ) {}

  /**
   * A closed bar fed to `book`: resting limits it crosses fill. The bars of a batch share one read and
   * one write of te_last_bar. A promise only when fills are being written: a backfill's bars mostly
   * fill nothing. (A method, not a closure per bar: under tsx, the benches' and dev's runner, each
   * closure made costs a keepNames defineProperty.)
   */
  bar(book: PaperExchange, bar: Bar): Promise<void> | undefined {
    const prev = this.lastOpenTime.get(bar.symbol);
    if (prev !== undefined && prev >= bar.openTime) return undefined; // old or duplicate bar
    const reports = book.onBar(bar, this.gate); // the gate is told of each fill as the bar makes it
    this.lastOpenTime.set(bar.symbol, bar.openTime);
    this.newBars.set(bar.symbol, bar);
    return reports.length > 0 ? this.barFilled(reports) : undefined;
  }

  private async barFilled(reports: ExecutionReport[]): Promise<void> {
    await this.flush(); // the orders these reports update must be written first (flush writes this.fills)
    await data.applyBarReports(this.tx, reports);
    this.fills.push(...reports.flatMap((r) => r.fills));
  }

  /** Writes the orders and fills accumulated so far; only fills not recorded before produce events (their ids returned). */
  async flush(): Promise<Set<string>> {
    const fresh = await data.insertOrdersAndFills(this.tx, this.rows, this.fills);
    this.rows = [];
    for (const f of this.fills)
      if (fresh.has(f.fillId)) {
        this.events.push(fillEvent(f));
        this.fillsTotal.inc({ liquidity: f.liquidity });
      }
    this.fills = [];
    return fresh;
  }

  /**
   * The orders and fills not yet written and every event, sent with COMMIT in one round trip
   * (data.FINAL_WRITES, which the transaction must have prepared); a fill's event only if its fill is
   * new. Answers what was enqueued (for the relay once committed); with nothing to write, sends
   * nothing and answers undefined (the transaction helper commits).
   */
  async commit(commitWith: CommitWith): Promise<Enqueued | undefined> {
    const pending = this.fills;
    const events = [...this.events, ...pending.map(fillEvent)];
    if (this.rows.length === 0 && events.length === 0) return undefined;
    const insert = outboxInsert("te_outbox", events);
    const fillIdOfEvent = [...this.events.map(() => null), ...pending.map((f) => f.fillId)];
    const rows = (await commitWith(executeWith(data.FINAL_WRITES, [...data.orderColumns(this.rows), ...data.fillColumns(pending), ...insert.params, fillIdOfEvent]))) as { id: string; event_id: string }[];
    const inserted = new Set(rows.map((r) => r.event_id));
    for (const f of pending) if (inserted.has(f.fillId)) this.fillsTotal.inc({ liquidity: f.liquidity });
    this.rows = [];
    this.fills = [];
    return insert.enqueued(rows);
  }

  /** Live: records what Binance answered for an order this batch sent; one resting there is weighed with the later ones (FillGate.resting). */
  async recordSent(o: OrderRequest, report: ExecutionReport): Promise<void> {
    this.sent.push({ order: o, report });
    await this.record(o, report);
    if (report.status === "resting") this.gate.resting(o, report.remaining);
  }

  /** Records an execution's outcome: the order's row, its fills, and a rejection, expiry or (live) cancel event. */
  async record(o: OrderRequest, report: ExecutionReport): Promise<void> {
    this.rows.push(rowOf(o, report));
    this.fills.push(...report.fills);
    this.gate.filled(report.fills);
    if (report.status === "rejected") this.events.push(outcomeEvent(o, "order.rejected", report.reason ?? "REJECTED"));
    if (report.status === "expired" || report.status === "cancelled") {
      if (report.fills.length > 0) await this.flush(); // a partly filled IOC, or a live order filled in part before its cancel: its fills first
      // Live: an order adopted from Binance CANCELED after the platform sent its cancel (live.ts reportOf): the cancel's confirmation.
      this.events.push(report.status === "cancelled" ? cancelledEvent(o, report.remaining, "CANCELLED_ON_REQUEST") : outcomeEvent(o, "order.expired", report.reason ?? "IOC_NOT_FILLED"));
    }
  }
}
