/**
 * Live mode: orders a te_live_sends record says may be open at Binance while no te_orders row lets
 * the poll see them, looked up by the live poll (engine.ts applyPoll) without waiting for a message.
 * Their record holds the order (venue_order, migration 0403: written with each placement and with
 * the `unrecorded` mark):
 *   - marked `cancel_failed` (sentOrders.ts: sent, its own row unwritable, its cancel unanswered):
 *     the cancel is tried again as a redelivery tries it (sentOrders.ts retryUnrecordedCancel): once
 *     Binance has ended it, its end is published and the mark moves to `cancelled` or `not_open`;
 *   - unmarked, with a placement sent and no te_orders row (an attempt that never committed: a batch
 *     that failed as an outage and waits for its retry, or a process killed before its COMMIT):
 *     looked up at Binance (live.ts lookUp) and, if Binance has it, adopted as the batch would adopt
 *     it (adoptHeldSent's way): its te_orders row with Binance's state (resting: tracked and polled),
 *     its fills and events, its record deleted (a cancel mark moving to the row), in a transaction
 *     of its own. The te_orders insert is the claim: an order a batch recorded first is left as that
 *     batch wrote it, and the locks come in a batch's order (te_orders, then te_live_sends). One
 *     Binance never had (-2013, once no placement of it may still land) is left to its redelivery,
 *     which places it; it is not asked about again while its record is unchanged.
 * The records are read by load() (at start, and after every failed batch: what it left); each poll
 * reads again the ones it is about to ask about and asks about at most LOOKUPS_PER_POLL. No answer
 * (binance/errors.ts outcomeUnknown: 5xx, timeout; a throttle, a clock refused; PostgreSQL
 * unavailable) is asked again after a backoff doubling from BACKOFF_MS up to MAX_BACKOFF_MS; a
 * refusal Binance will repeat (any other 4xx: the symbol, the key's permissions) is logged as an
 * error and written to the record (refused_at, migration 0404: liveSends.ts markRefused), so neither
 * this process nor the next asks again about the record as it stands: a redelivery (which tries
 * itself, and a new placement or mark clears the refusal) or a person settles it: reviews them and,
 * the cause fixed, releases one (refusals, release: trading-engine's admin routes), which the next
 * poll asks about. load() logs how many refused records wait, so a restart does not silence them.
 */
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import { storableText, type PostgresClient } from "../../kit";
import { BinanceApiError, outcomeUnknown } from "../../trading/binance/errors";
import { HandlerUnavailableError } from "../../trading/infra/deadLetters";
import { enqueue, type Enqueued, type OutboxRelay } from "../../trading/infra/outbox";
import type { ExecutionReport } from "../../trading/paperExchange";
import type { OrderRequest } from "../../trading/types";
import { BatchWork, rowOf } from "./batch";
import * as data from "./data";
import type { LiveVenue } from "./live";
import { clearRefusal, forgetLiveSends, leftSentOrders, markRefused, refusedCount, refusedSends, type LeftSent, type RefusedSend } from "./liveSends";
import { retryUnrecordedCancel } from "./sentOrders";

export const LOOKUPS_PER_POLL = 10;
export const BACKOFF_MS = 2_000;
export const MAX_BACKOFF_MS = 300_000;
/** Binance's message kept with a refused record: its `msg` is a sentence; a proxy's error page is cut. */
const MAX_REFUSAL_CHARS = 500;

export interface LeftSentDeps {
  pg: PostgresClient;
  log: Logger;
  relay: OutboxRelay;
  fillsTotal: Counter<string>;
  liveOrdersUnrecorded: Counter<"outcome">;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A refusal Binance will repeat: a 4xx that is no throttle (429, 418) nor a timestamp refused for the clock (-1021). */
export function refusedForGood(err: unknown): boolean {
  const cause = err instanceof HandlerUnavailableError ? err.cause : err;
  return cause instanceof BinanceApiError && !outcomeUnknown(cause) && cause.status !== 429 && cause.status !== 418 && cause.code !== -1021;
}

export class LeftSentOrders {
  private left = new Map<string, LeftSent>();
  private backoff = new Map<string, { failures: number; dueAt: number }>();
  /** Binance never had them, by the placement timestamp that answer was about (a new placement asks again). */
  private absent = new Map<string, number | undefined>();
  /** Refused for good where writing so to the record failed: not asked again by this process. */
  private refused = new Set<string>();
  private refusedReported = false;
  constructor(private readonly now: () => number = Date.now) {}

  /** Reads the records to look up; the first load of the process also reports the refused ones waiting for a person. */
  async load(pg: PostgresClient, log: Logger): Promise<void> {
    this.left = new Map((await leftSentOrders(pg)).map((l) => [l.order.orderId, l]));
    if (this.refusedReported) return;
    const refused = await refusedCount(pg);
    if (refused > 0) log.error({ refused }, "live poll: te_live_sends holds records Binance refused for good to answer about (refused_at); not asked again: review them (GET /api/trading/live/refusals) and release each once its cause is fixed");
    this.refusedReported = true;
  }

  /** The refused records a person reviews (oldest first, at most `limit`), and those this process stopped asking about where writing the refusal failed. */
  async refusals(pg: PostgresClient, limit: number): Promise<{ total: number; records: RefusedSend[]; unwritten: string[] }> {
    return { total: await refusedCount(pg), records: await refusedSends(pg, limit), unwritten: [...this.refused].sort() };
  }

  /**
   * A person has fixed what Binance refused: the record's refusal is cleared (and this process's, if
   * writing it had failed), so the next poll asks about it, without waiting for a restart or a failed
   * batch to read the records again. False if neither held a refusal.
   */
  async release(pg: PostgresClient, orderId: string): Promise<boolean> {
    const cleared = await clearRefusal(pg, orderId);
    const inProcess = this.refused.delete(orderId);
    if (!cleared && !inProcess) return false;
    this.backoff.delete(orderId);
    for (const l of await leftSentOrders(pg, [orderId])) this.left.set(orderId, l);
    return true;
  }

  private isDue(l: LeftSent): boolean {
    const id = l.order.orderId;
    if (this.refused.has(id) || (this.absent.has(id) && this.absent.get(id) === l.lastSentAt)) return false;
    return (this.backoff.get(id)?.dueAt ?? 0) <= this.now();
  }

  /** Whether a poll has one to ask Binance about now. */
  due(): boolean {
    for (const l of this.left.values()) if (this.isDue(l)) return true;
    return false;
  }

  private async failed(deps: Pick<LeftSentDeps, "pg" | "log">, l: LeftSent, err: unknown): Promise<void> {
    const { log } = deps;
    const id = l.order.orderId;
    if (refusedForGood(err)) {
      // Cut, then made storable: a cut may split a surrogate pair, and an error page may hold U+0000 (text refuses both).
      const refusal = storableText(messageOf(err).slice(0, MAX_REFUSAL_CHARS));
      // Recorded (or the record changed since it was read): the record says what to ask, from the next load on.
      const recorded = await markRefused(deps.pg, l, refusal).then(() => true, (markErr: unknown) => {
        log.warn({ orderId: id, err: { message: messageOf(markErr) } }, "live poll: could not record Binance's refusal in te_live_sends; this process asks no more, the next one asks again");
        return false;
      });
      if (recorded) this.left.delete(id);
      else this.refused.add(id);
      log.error({ orderId: id, cancelFailed: l.cancelFailed, recorded, err: { message: refusal } }, "live poll: Binance refuses to answer about an order te_live_sends says may be open there; not asked again: reconcile by hand");
      return;
    }
    const failures = (this.backoff.get(id)?.failures ?? 0) + 1;
    this.backoff.set(id, { failures, dueAt: this.now() + Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (failures - 1)) });
    log.warn({ orderId: id, failures, err: { message: messageOf(err) } }, "live poll: order te_live_sends says may be open at Binance unanswered; asked again later");
  }

  /** Asks Binance about the due ones and records what it answered; throws if an adoption cannot be recorded (the caller rebuilds the book). */
  async poll(deps: LeftSentDeps, venue: LiveVenue): Promise<void> {
    const ids = [...this.left.values()].filter((l) => this.isDue(l)).slice(0, LOOKUPS_PER_POLL).map((l) => l.order.orderId);
    if (ids.length === 0) return;
    // Read again: a redelivery (or a person) may have settled some since.
    const fresh = new Map((await leftSentOrders(deps.pg, ids)).map((l) => [l.order.orderId, l]));
    const found: { left: LeftSent; report: ExecutionReport }[] = [];
    for (const id of ids) {
      const l = fresh.get(id);
      if (!l) {
        this.left.delete(id);
        this.backoff.delete(id);
        continue;
      }
      this.left.set(id, l);
      try {
        if (l.cancelFailed) {
          const enqueued = await retryUnrecordedCancel(deps, venue, l.order);
          if (enqueued) deps.relay.notify(enqueued);
          this.left.delete(id);
        } else {
          const report = await venue.lookUp(l.order, l.cancelSent, l.lastSentAt);
          if (report) found.push({ left: l, report });
          else this.absent.set(id, l.lastSentAt);
        }
        this.backoff.delete(id);
      } catch (err) {
        await this.failed(deps, l, err);
      }
    }
    if (found.length === 0) return;
    const adopted = await adopt(deps, found.map((f) => ({ order: f.left.order, report: f.report }))).catch(async (err: unknown) => {
      for (const f of found) await this.failed(deps, f.left, err);
      throw err;
    });
    for (const f of found) this.left.delete(f.left.order.orderId);
    if (adopted) deps.relay.notify(adopted);
  }
}

/**
 * Orders Binance has, recorded as a batch records an adoption, in a transaction of their own: only
 * those whose te_orders row this inserts (the claim); their fills and events, their records deleted.
 */
async function adopt(deps: LeftSentDeps, found: { order: OrderRequest; report: ExecutionReport }[]): Promise<Enqueued | undefined> {
  let enqueued: Enqueued | undefined;
  await deps.pg.transaction(async (tx) => {
    const w = new BatchWork(tx, deps.fillsTotal);
    const taken = await data.insertNewOrders(tx, found.map((f) => rowOf(f.order, f.report)));
    for (const f of found) if (taken.has(f.order.orderId)) await w.record(f.order, f.report); // its row's insert now a no-op
    await w.flush();
    await forgetLiveSends(tx, [...taken]);
    enqueued = await enqueue(tx, "te_outbox", w.events);
  });
  return enqueued;
}
