/**
 * What a DELETE of a strategy does to its orders: it requests the cancel of every order the
 * strategy placed that is not known to be final, through order-management's public cancel route
 * (`POST /:id/cancel` as the strategy's owner). That route is asynchronous: the order goes
 * `pending_cancel` and the trading-engine confirms (`cancelled`, or `filled` if a fill won).
 * An order order-management no longer cancels (409: already filled, cancelled, rejected or expired)
 * or does not have (404) has nothing resting: done. An order whose cancel could not be requested
 * (order-management unreachable, slow, or answering anything else) is returned: the DELETE answers
 * 503 naming it, and a repeated DELETE asks again. The position the fills left stays with the user.
 * Orders of decisions whose outcome was never recorded are found first (recover.ts); while one
 * cannot be (order-management unreachable, or its submit maybe still in flight) the DELETE is a
 * 503 as well.
 */
import type { Logger } from "pino";
import { deleteOlderThanDays, HttpError, isShuttingDown, publicServiceName, shuttingDown, unavailable, type PeerClient, type Queryable } from "../../kit";
import { ownerHeaders, type StrategyOrders } from "./book";
import { settleUnrecordedOrders } from "./recover";
import type { Strategy } from "./store";

export interface RetireDeps {
  orders: StrategyOrders;
  peers: PeerClient;
  log: Logger;
  /** Resolves once no evaluation of the strategy is running (one may be placing an order). */
  idle: (strategyId: string) => Promise<void>;
}

/** An order whose cancel was not requested, and why. */
export interface NotCancelled {
  orderId: string;
  reason: string;
}

/** Cancel requested (202), or nothing rests under that id for the owner (409 not cancellable, 404). */
const DONE = new Set([202, 404, 409]);

async function requestCancel(deps: RetireDeps, s: Strategy, orderId: string, requestId?: string): Promise<NotCancelled | undefined> {
  try {
    const r = await deps.peers.call<{ error?: { code: string } }>("order-management", `/${orderId}/cancel`, { method: "POST", headers: ownerHeaders(s), requestId });
    if (r.status === 404) deps.log.warn({ strategyId: s.strategyId, orderId }, "order-management does not know the strategy's order: nothing to cancel");
    return DONE.has(r.status) ? undefined : { orderId, reason: `${publicServiceName("order-management")} answered ${r.status}${r.body?.error?.code ? ` ${r.body.error.code}` : ""}` };
  } catch (e) {
    // The peer client's 502/504: order-management unreachable or too slow.
    return { orderId, reason: e instanceof HttpError ? `${e.code}: ${e.message}` : (e as Error).message };
  }
}

/**
 * Requests the cancel of a deleted strategy's open orders; answers those it could not. Called once
 * the strategy is marked deleted: an evaluation still running is waited for first, as it may be
 * submitting an order (one that started later reads the strategy deleted and places none).
 */
export async function cancelWorkingOrders(deps: RetireDeps, s: Strategy, requestId?: string): Promise<NotCancelled[]> {
  await deps.idle(s.strategyId);
  // An order submitted without its answer recorded is found first (recover.ts), to be cancelled too.
  await settleUnrecordedOrders(deps, s).catch((e: unknown) => {
    if (!(e instanceof HttpError)) throw e;
    // An order lookup the shutdown cut (kit peers cutOnClose): a drain answer, not a failure logged as one.
    if (isShuttingDown(e)) throw shuttingDown(`strategy ${s.strategyId} is deleted, but its working orders' cancel was not requested; repeat the DELETE`);
    throw unavailable(
      "ORDERS_NOT_CANCELLED",
      `strategy ${s.strategyId} is deleted, but not all of its orders are known yet (${e.message}); repeat the DELETE to request their cancel`,
      Number(e.headers?.["retry-after"] ?? 5),
    );
  });
  const open = await deps.orders.open(s.strategyId);
  const outcomes = await Promise.all(open.map((orderId) => requestCancel(deps, s, orderId, requestId)));
  const left = outcomes.filter((o): o is NotCancelled => o !== undefined);
  if (left.length > 0) deps.log.warn({ strategyId: s.strategyId, notCancelled: left }, "deleted strategy: some working orders' cancel could not be requested");
  return left;
}

/** The DELETE's answer when some cancels could not be requested: the strategy is deleted, its orders not all. */
export function ordersNotCancelled(s: Strategy, left: NotCancelled[]): HttpError {
  return unavailable(
    "ORDERS_NOT_CANCELLED",
    `strategy ${s.strategyId} is deleted, but the cancel of ${left.length} of its working orders could not be requested ` +
      `(${left.map((o) => `${o.orderId}: ${o.reason}`).join("; ")}); repeat the DELETE to request them again`,
    5,
  );
}

/**
 * Deleted strategies without decisions, `days` after their delete (ORCH_DELETED_RETENTION_DAYS),
 * `batch` a pass (the kit's PeriodicDelete). Without it create and delete repeated grew ai_strategies
 * without bound: a deleted strategy is not counted against ORCH_MAX_STRATEGIES_PER_USER (a user at the
 * limit deletes one to make another). One with decisions stays, the parent of its trader's record (GET
 * /decisions/:id, its orders' outcomes), until purgeOldDecisions has deleted them. A deleted strategy
 * is never evaluated again, so none gains a decision while it waits.
 */
export function purgeDeletedStrategies(db: Queryable, days: number, batch: number): Promise<number> {
  return deleteOlderThanDays(
    db,
    { table: "ai_strategies", key: "strategy_id", at: "deleted_at", also: "NOT EXISTS (SELECT 1 FROM ai_decisions d WHERE d.strategy_id = ai_strategies.strategy_id)" },
    days,
    batch,
  );
}

/**
 * Which decisions a retention pass may delete: every one of a deleted strategy (never evaluated
 * again, its book read no more; its last orders' outcomes are never recorded, so "still settling"
 * would keep them, and it, for good). Of a live strategy, only those SETTLED_NOTHING: not one whose
 * order is not known final nor a buy or sell whose outcome was never recorded (recover.ts looks for
 * those), nor one whose order filled: the strategy's position and cash are the sum of those
 * (book.ts). Holds, skips, refusals and orders that filled nothing add nothing to it.
 *
 * SETTLED_NOTHING is also the condition of migration 0491's partial index, word for word: PostgreSQL
 * uses a partial index only when it can prove the query's condition implies the index's.
 */
export const SETTLED_NOTHING = `NOT (action IN ('buy', 'sell') AND order_id IS NULL AND risk IS NULL)
    AND (order_id IS NULL OR order_final_status IS NOT NULL)
    AND coalesce(order_filled_signed, 0) = 0`;

/**
 * A lower bound of the decided_at of `strategy`'s oldest decision once it is deleted at `deletedAt` (SQL
 * expressions; `except`, a further condition on the decisions `d`): the oldest one it has, or, within an
 * hour of the delete, the delete less a minute: an evaluation in flight then may still record one (its
 * clock_timestamp() no older than that, whenever it commits). NULL: nothing left to delete. Kept on
 * ai_strategies.oldest_decision_at (migration 0494) by the delete (store.ts) and by each retention pass.
 */
export const oldestDecisionBound = (strategy: string, deletedAt: string, except = "") =>
  `least((SELECT min(d.decided_at) FROM ai_decisions d WHERE d.strategy_id = ${strategy}${except}), ` +
  `CASE WHEN ${deletedAt} > now() - interval '1 hour' THEN ${deletedAt} - interval '1 minute' END)`;

/**
 * Decisions made longer than `days` ago (ORCH_DECISION_RETENTION_DAYS: records of why the AI traded,
 * kept as long as compliance-monitor keeps its audit trail), `batch` a pass, oldest first among those
 * read, skipping rows another replica's pass holds. A pass reads only what is due: the SETTLED_NOTHING
 * ones through their own index (migration 0491), and the deleted strategies' through the strategies
 * whose oldest decision is due (ai_strategies_deleted_oldest_decision, migration 0494), then their
 * oldest decisions by ai_decisions_strategy. It had read 0480's index of every decision from the oldest
 * on, a live strategy's filled and settling ones (kept, more every day) again at every pass; then
 * (0491) probed every deleted strategy that still had decisions, due or not, more every day. Each
 * deleted strategy probed gets its bound again (its oldest decision left, this pass's deleted ones
 * excepted; one probed without a due decision, whose bound was low, is not probed again). A deleted
 * strategy whose decisions are all gone is then purged by purgeDeletedStrategies.
 */
export async function purgeOldDecisions(db: Queryable, days: number, batch: number): Promise<number> {
  // By key through arrays (= ANY): a join of the candidates, whose count the planner cannot know, was planned as a scan of the whole table.
  // `probed`: one row per deleted strategy read (a NULL decision when none of its is due), at most a batch of rows; its
  // cutoff is written out (not due_before's): an index condition, so only the strategies due are read, not every deleted one filtered.
  const r = await db.query(
    `WITH due_before AS (SELECT now() - make_interval(days => $1) AS at),
     probed AS (
       SELECT s.strategy_id, d.decision_id, d.decided_at FROM ai_strategies s CROSS JOIN due_before LEFT JOIN LATERAL (
          SELECT decision_id, decided_at FROM ai_decisions WHERE strategy_id = s.strategy_id AND decided_at < due_before.at ORDER BY decided_at LIMIT $2
        ) d ON true
        WHERE s.deleted_at IS NOT NULL AND s.oldest_decision_at < now() - make_interval(days => $1) ORDER BY s.oldest_decision_at LIMIT $2),
     candidates AS (
       (SELECT d.decision_id, d.decided_at FROM ai_decisions d, due_before
         WHERE d.decided_at < due_before.at AND ${SETTLED_NOTHING} ORDER BY d.decided_at LIMIT $2)
       UNION ALL
       (SELECT decision_id, decided_at FROM probed WHERE decision_id IS NOT NULL)
     ),
     due AS (SELECT decision_id FROM ai_decisions WHERE decision_id = ANY (ARRAY(SELECT decision_id FROM candidates ORDER BY decided_at LIMIT $2)) FOR UPDATE SKIP LOCKED),
     gone AS (DELETE FROM ai_decisions WHERE decision_id = ANY (ARRAY(SELECT decision_id FROM due)) RETURNING decision_id),
     bounded AS (
       UPDATE ai_strategies s SET oldest_decision_at = ${oldestDecisionBound("s.strategy_id", "s.deleted_at", " AND d.decision_id <> ALL (ARRAY(SELECT decision_id FROM gone))")}
        WHERE s.strategy_id = ANY (ARRAY(SELECT DISTINCT strategy_id FROM probed)))
     SELECT count(*)::int AS n FROM gone`,
    [days, batch],
  );
  return (r.rows[0] as { n: number } | undefined)?.n ?? 0;
}
