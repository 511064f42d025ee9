/**
 * The engine: executes accepted orders, pulls cancelled ones from the book, fills resting limits
 * when a bar crosses them. Paper mode executes on the deterministic PaperExchange; live mode sends
 * orders to Binance with client-order-id reconciliation (./live.ts): there a resting order is Binance's,
 * never paper-filled; its cancel goes to Binance and a poll collects its fills.
 *
 * Exactly-once effect: every execution is recorded in PostgreSQL (te_orders, te_fills, te_last_bar)
 * together with its outgoing events (te_outbox) in one transaction per fetched batch. Fill ids are
 * deterministic (`${orderId}:${n}`), te_orders is keyed by order id and te_last_bar remembers the
 * last bar per symbol, so a redelivered order or bar is recognised and skipped. The in-memory book is
 * rebuilt from those tables on start and after any failed transaction; until a rebuild has succeeded
 * (PostgreSQL may be down when the transaction fails) the book is stale and no batch runs against it:
 * each batch first tries the rebuild again and, if that fails too, is refused as an outage
 * (HandlerUnavailableError), so the consumer retries it later instead of applying it to a book that
 * still holds the effects of the rolled-back transaction.
 *
 * The kill switch (halts.ts): a batch that may fill or send an order reads the halted and reduce_only
 * scopes under the kill switch's lock with its BEGIN; no order of a halted owner fills, nor one that
 * would not shrink a reduce_only owner's position (a bar passes such resting orders over), and none
 * arriving is executed or sent: it is recorded `held`, until a batch finds it may fill (then executed
 * as on arrival) or order-management's sweep cancels it. Live, one an uncommitted attempt may have sent
 * is looked up at Binance, adopted if there (adoptIfSent; held: next poll or batch first, adoptHeldSent; with no row: the poll, leftSent.ts).
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import type { PostgresClient } from "../../kit";
import { HandlerUnavailableError, PoisonMessageError } from "../../trading/infra/deadLetters";
import type { Enqueued, OutboxRelay } from "../../trading/infra/outbox";
import { PaperExchange, type PaperExchangeOptions, type RestingOrder } from "../../trading/paperExchange";
import type { Bar, OrderRequest } from "../../trading/types";
import { BatchWork } from "./batch";
import * as data from "./data";
import { gateFor, haltsStatements, OPEN_GATE } from "./halts";
import { LiveVenue, type LiveOptions } from "./live";
import { forgetLiveSends, heldLeftSent, recordLiveSends, recordPlacement } from "./liveSends";
import { adoptHeldSent, adoptIfSent, cancelLive, recordPolled } from "./liveUpdates";
import { LeftSentOrders } from "./leftSent";
import { settleFailedAttempt } from "./sentOrders";
import { cancelledEvent, type EngineCommand } from "./messages";

/** The items of `items` whose owner is `userId` (all of them when undefined), lazily. */
function* ofOwner<T>(items: Iterable<T>, owner: (item: T) => string, userId: string | undefined): Iterable<T> {
  for (const item of items) if (userId === undefined || owner(item) === userId) yield item;
}

export interface EngineDeps {
  pg: PostgresClient;
  relay: OutboxRelay;
  log: Logger;
  paper: PaperExchangeOptions;
  live?: LiveOptions;
  fillsTotal: Counter<string>;
  liveOrdersUnrecorded: Counter<"outcome">;
  now?: () => number; // the live poll's backoff clock (leftSent.ts): Date.now, or a test's, moved past a backoff instead of waited out
}

export class TradingEngine {
  private exchange: PaperExchange;
  /** The tail of the batches applied so far: each starts after the previous one settled (a batch committing during the rebuild after a failed one would be missing from it); promise chaining, no mutex package. */
  private applied: Promise<unknown> = Promise.resolve();
  /** The book may differ from the database (a failed batch, then a failed rebuild); cleared by a rebuild that succeeded. */
  private stale = false;
  /** Orders received while the kill switch forbade their fill (te_orders `held`): neither in the book nor at Binance. */
  private held = new Map<string, OrderRequest>();
  /** Live: the held ones an attempt that never committed may have sent (te_live_sends): the poll looks them up. */
  private heldSent = new Set<string>();
  /** Live: orders te_live_sends says may be open at Binance with no te_orders row (an uncommitted attempt's; `cancel_failed`): the poll looks them up. */
  private readonly leftSent: LeftSentOrders;
  /** Live mode: the orders at Binance (the PaperExchange then only keeps the last bars). */
  private readonly venue?: LiveVenue;
  constructor(private readonly deps: EngineDeps) {
    this.exchange = new PaperExchange(deps.paper);
    this.leftSent = new LeftSentOrders(deps.now);
    if (deps.live) this.venue = new LiveVenue(deps.live, deps.log);
  }

  /** Rebuilds the in-memory book and last bars from the database. */
  async load(): Promise<void> {
    const exchange = new PaperExchange(this.deps.paper);
    const bars = await data.loadLastBars(this.deps.pg);
    for (const b of bars) exchange.setLastBar(b);
    const resting = await data.loadResting(this.deps.pg);
    const held = await data.loadHeld(this.deps.pg);
    const heldSent = new Set(this.venue ? (await heldLeftSent(this.deps.pg)).keys() : []);
    if (this.venue) await this.leftSent.load(this.deps.pg, this.deps.log);
    // Live resting orders are Binance's: tracked (and polled), never put where a bar could paper-fill them.
    if (this.venue) this.venue.restore(resting);
    else for (const r of resting) exchange.restore(r);
    this.exchange = exchange;
    this.held = new Map(held.map((o) => [o.orderId, o]));
    this.heldSent = heldSent;
    this.deps.log.info({ bars: bars.length, resting: resting.length, held: held.length }, "engine state loaded");
  }

  /** Whether the book waits for a rebuild (a failed transaction whose rebuild failed too). */
  isStale = (): boolean => this.stale;

  /** Rebuilds the book after a failed transaction; the book is trusted again only if this succeeds. */
  private async reload(): Promise<void> {
    this.stale = true;
    await this.load();
    this.stale = false;
  }

  /** After a failed transaction: rebuilt now, or, if PostgreSQL cannot answer, before the next batch (stale until then). */
  private async reloadAfterFailure(): Promise<void> {
    await this.reload().catch((e: Error) => this.deps.log.warn({ err: { message: e.message } }, "engine book stale: rebuild failed; batches wait for it"));
  }

  /** The resting orders of one owner, or of everyone (undefined), in submission order, not copies: paper ones by the exchange's index of owners, live ones (a few hundred at most: Binance's open-order limits) by a walk. */
  restingOf(userId?: string): Iterable<RestingOrder> {
    return this.venue ? ofOwner(this.venue.openOrders(), (r) => r.order.userId, userId) : this.exchange.restingOf(userId);
  }
  /** The held orders of one owner, or of everyone (undefined), oldest first (not copies). */
  heldOf = (userId?: string): Iterable<OrderRequest> => ofOwner(this.held.values(), (o) => o.userId, userId);
  lastBar = (symbol: string): Bar | undefined => this.exchange.lastBar(symbol);
  /** Live: the records the poll stopped asking Binance about for a refusal, and a person's release of one (leftSent.ts). */
  readonly liveRefusals = { list: (limit: number) => this.leftSent.refusals(this.deps.pg, limit), release: (orderId: string) => this.leftSent.release(this.deps.pg, orderId) };

  /**
   * One transaction per batch of commands (the fetched batches of the orders and candles partitions,
   * joined by the consumer), in offset order within each partition, one batch at a time (`applied`).
   * Malformed messages never get here: the consumer decodes each one (messages.ts commandOf) and
   * sets aside the ones it refuses.
   */
  onBatch(commands: EngineCommand[]): Promise<void> {
    const run = this.applied.then(() => this.apply(commands));
    this.applied = run.catch(() => undefined);
    return run;
  }

  private async apply(commands: EngineCommand[]): Promise<void> {
    // Most of trading.orders is for others (`new`, `filled`, ...): a batch of nothing but those needs no transaction.
    if (commands.every((c) => c.kind === "ignore")) return;
    if (this.stale)
      await this.reload().catch((err: unknown) => {
        throw new HandlerUnavailableError("the engine's book could not be rebuilt from PostgreSQL after a failed batch; the batch waits", { cause: err });
      });
    const executeIds = commands.flatMap((c) => (c.kind === "execute" ? [c.order.orderId] : []));
    const barSymbols = [...new Set(commands.flatMap((c) => (c.kind === "bars" ? c.bars.map((b) => b.symbol) : [])))];
    const cancelIds = new Set(commands.flatMap((c) => (c.kind === "cancel" ? [c.order.orderId] : [])));
    // The kill switch's lock and read (halts.ts), only for a batch that may fill or send an order.
    const gated = executeIds.length > 0 || this.held.size > 0 || barSymbols.some((s) => this.exchange.hasResting(s));
    let enqueued: Enqueued | undefined;
    // Which orders are already recorded is asked together with BEGIN when it can be written in literals.
    const knownSql = data.knownOrderIdsStatement(executeIds);
    // Live: the orders this batch may send (arriving, or held and released) are recorded in autocommit
    // before BEGIN (liveSends.ts): a kill between a send and the COMMIT leaves a trace.
    const liveIds = this.venue ? [...executeIds, ...this.held.keys()] : [];
    const liveBefore = this.venue ? await recordLiveSends(this.deps.pg, liveIds) : undefined;
    const sentBefore = liveBefore?.sent;
    // Live: the cancels this batch may send are marked on their resting rows the same way (data.ts
    // markCancelSent): a poll after a kill before the COMMIT reports Binance's CANCELED as `cancelled`.
    if (this.venue) await data.markCancelSent(this.deps.pg, [...cancelIds]);
    // The orders this batch may fill (arriving, held, resting in a symbol it brings bars of): their owners' deletions are read with the halts.
    const mayFill = () => [...commands.flatMap((c) => (c.kind === "execute" ? [c.order] : [])), ...this.held.values(), ...this.exchange.restingOrdersIn(barSymbols)];
    const begin = [gated ? haltsStatements(mayFill().map((o) => o.userId)) : undefined, knownSql].filter((s) => s !== undefined).join("; ");
    const attempt: { work?: BatchWork } = {};
    try {
      await this.deps.pg.transaction(async (tx, begun, begunEach, commitWith) => {
        const known = knownSql === undefined ? await data.knownOrderIds(tx, executeIds) : new Set(begun.map((r) => String(r.order_id)));
        const lastOpenTime = await data.lastBarOpenTimes(tx, barSymbols);
        const w = (attempt.work = new BatchWork(tx, this.deps.fillsTotal, known, lastOpenTime, gated ? await gateFor(tx, begunEach[1], mayFill, () => this.venue?.resting() ?? []) : OPEN_GATE, liveBefore));
        await this.release(w, cancelIds);
        for (const c of commands) {
          if (c.kind === "execute") await this.execute(w, c.order);
          else if (c.kind === "cancel") await this.cancel(w, c.order);
          else if (c.kind === "bars")
            for (const b of c.bars) {
              const writing = w.bar(this.exchange, b); // awaited only when it writes: a microtask turn per bar otherwise
              if (writing) await writing;
            }
        }
        await data.saveLastBars(tx, [...w.newBars.values()]);
        // Live: the rows first (a record's cancel mark moves onto its row); a held order marked unrecorded keeps its record (the only held one still `sent`: adoptIfSent).
        if (sentBefore) await w.flush().then(() => forgetLiveSends(tx, liveIds.filter((id) => !(this.held.has(id) && sentBefore.has(id)))));
        enqueued = await w.commit(commitWith);
      }, { begin: begin === "" ? undefined : begin, prepared: data.BATCH_PREPARED });
    } catch (err) {
      // Live: a failure for good may get the messages set aside: what Binance has is recorded first (sentOrders.ts).
      const failure = this.venue ? await settleFailedAttempt(this.deps, this.venue, err, attempt.work) : err;
      // The book may hold effects of the rolled-back transaction (an order a bar took out, one this
      // attempt rested): rebuilt now, or, if PostgreSQL cannot answer, before the next batch.
      await this.reloadAfterFailure();
      throw failure;
    }
    // Every held order with a record was looked up (release, execute): only those marked unrecorded keep one.
    this.heldSent.clear();
    if (enqueued !== undefined) this.deps.relay.notify(enqueued);
  }

  private async execute(w: BatchWork, o: OrderRequest): Promise<void> {
    if (w.known.has(o.orderId)) return; // redelivery (after a restart, or twice in a batch): already executed
    w.known.add(o.orderId);
    if (w.gate.mayFill(o, o.quantity)) return this.run(w, o);
    if (this.venue && (await adoptIfSent(w, o, this.venue))) return; // already at Binance: not held
    // Kept as a resting order is, unfilled and unsent: the kill switch's cancel pulls it (cancel), or it is released.
    w.rows.push({ order: o, status: "held", remaining: o.quantity, fillSeq: 0 });
    this.held.set(o.orderId, o);
  }

  /**
   * The held orders that may fill now are executed, as on arrival, oldest first (each weighed as if
   * the ones before it filled whole); not those this batch also cancels (the cancel pulls them). Their
   * `held` rows make way for the execution's.
   */
  private async release(w: BatchWork, cancelled: Set<string>): Promise<void> {
    // Live: one an uncommitted attempt may have sent is asked of Binance first (an order at Binance cannot be held).
    if (this.venue) for (const o of [...this.held.values()]) if (await adoptIfSent(w, o, this.venue)) this.held.delete(o.orderId);
    const weighed = w.gate.copy();
    const due = [...this.held.values()].filter((o) => !cancelled.has(o.orderId) && weighed.admit(o));
    await data.deleteHeld(w.tx, due.map((o) => o.orderId));
    for (const o of due) {
      this.held.delete(o.orderId);
      await this.run(w, o);
    }
  }

  /** Executes an order (paper, or sent to Binance) and records the outcome in the batch. */
  private async run(w: BatchWork, o: OrderRequest): Promise<void> {
    // Live: an outcome Binance left unknown throws (an outage: the batch is retried and reconciled again).
    // Paper: a fill made on arrival (or on release) happens now, which is the UTC day its PnL counts toward.
    if (!this.venue) return w.record(o, this.exchange.submit(o, Date.now()));
    // Sent once, its row unwritable, ended at Binance (sentOrders.ts): not asked of Binance again, nor counted again.
    const unrecorded = w.liveBefore?.unrecorded.get(o.orderId);
    if (unrecorded !== undefined && unrecorded !== "cancel_failed")
      throw new PoisonMessageError(`order ${o.orderId} was sent to Binance, could not be recorded in te_orders and ended there (${unrecorded}); te_live_sends keeps it: reconcile by hand`);
    const before = w.liveBefore;
    await w.recordSent(o, await this.venue.execute(o, {
      sentBefore: before?.sent.has(o.orderId) === true, cancelSent: before?.cancelSent.has(o.orderId) === true, lastSentAt: before?.lastSentAt.get(o.orderId),
      recordPlacement: (timestamp) => recordPlacement(this.deps.pg, o, timestamp),
    }));
  }

  /**
   * A cancel request. A resting (or held) order leaves the book and the cancel is confirmed for its remaining
   * quantity (live: as Binance answers, liveUpdates.ts cancelLive; a held order never reached Binance); an order the engine already finished is left
   * alone (its fill or outcome is already on the way and ends the order); an order the engine never
   * saw is recorded as cancelled, so a late delivery of its acceptance cannot execute it.
   */
  private async cancel(w: BatchWork, o: OrderRequest): Promise<void> {
    await w.flush();
    const status = await data.orderStatus(w.tx, o.orderId);
    // A held order is not at Binance (release and execute adopted those Binance has), unless marked unrecorded: asked then.
    if (this.venue && (status === "resting" || (status === "held" && w.liveBefore?.sent.has(o.orderId)))) {
      this.held.delete(o.orderId);
      await cancelLive(w, o, this.venue);
    }
    else if (status === "resting" || status === "held") {
      const pulled = await data.cancelResting(w.tx, o.orderId);
      const fromBook = this.exchange.cancel(o.orderId);
      this.held.delete(o.orderId);
      w.events.push(cancelledEvent(o, fromBook?.remaining ?? pulled?.remaining ?? o.quantity, "CANCELLED_ON_REQUEST"));
    } else if (status === undefined) {
      w.known.add(o.orderId);
      await data.insertOrders(w.tx, [{ order: o, status: "cancelled", remaining: o.quantity, fillSeq: 0 }]);
      w.events.push(cancelledEvent(o, o.quantity, "CANCELLED_BEFORE_EXECUTION"));
    }
  }

  /** Live mode: polls the orders resting at Binance now and every `pollMs`; each poll runs between batches (`applied`), in its own transaction. */
  startLivePolling = (): void => this.venue?.startPolling(() => this.pollLive());
  stopLivePolling = async (): Promise<void> => this.venue?.stopPolling();

  /** One poll of the live orders at Binance; no request and no transaction while none rests, no held one may be there and no lookup is due (leftSent.ts). Never throws (logged). */
  pollLive(): Promise<void> {
    const venue = this.venue;
    if (!venue || (venue.openCount === 0 && this.heldSent.size === 0 && !this.leftSent.due())) return Promise.resolve();
    const run = this.applied.then(() => this.applyPoll(venue));
    this.applied = run.catch(() => undefined);
    return run.catch((err: Error) => this.deps.log.warn({ err: { message: err.message } }, "live poll failed; the next poll tries again"));
  }

  private async applyPoll(venue: LiveVenue): Promise<void> {
    if (this.stale) await this.reload();
    // First the held orders an uncommitted attempt may have sent: adopted ones are polled with the others from now on.
    if (this.heldSent.size > 0) {
      const looked = await this.recordingPoll(() => adoptHeldSent(this.deps, venue, [...this.heldSent].flatMap((id) => this.held.get(id) ?? [])));
      for (const id of looked.adopted) this.held.delete(id);
      for (const id of looked.settled) this.heldSent.delete(id);
    }
    // Then those with no te_orders row (leftSent.ts): adopted ones are polled with the others from now on.
    if (this.leftSent.due()) await this.recordingPoll(async () => (await this.leftSent.poll(this.deps, venue), {}));
    const updates = await venue.poll();
    if (updates.length === 0) return;
    await this.recordingPoll(async () => ({ enqueued: await recordPolled(this.deps, updates) }));
    venue.settled(updates);
  }

  /** A poll's recording: the book rebuilt if it fails (a resting order the lookup tracked), the relay told of what it enqueued. */
  private async recordingPoll<T extends { enqueued?: Enqueued }>(record: () => Promise<T>): Promise<T> {
    const done = await record().catch(async (err: unknown) => {
      await this.reloadAfterFailure();
      throw err;
    });
    if (done.enqueued !== undefined) this.deps.relay.notify(done.enqueued);
    return done;
  }
}
