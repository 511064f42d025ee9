/**
 * Decisions whose order outcome was never recorded. An evaluation records a buy or sell decision,
 * submits its order to order-management (`idempotency-key` and `clientOrderId` both the decision
 * id), then records the outcome (the order id, the risk answer). A crash between the submit and
 * the outcome, or a submit that timed out after order-management committed it, leaves a decision
 * without an outcome whose order may exist: the book (book.ts), the working-orders cap and the
 * cancels of a DELETE (retire.ts) only see orders recorded on decisions, so they would miss it.
 *
 * Before the book is read and before a DELETE's cancels, each such decision older than
 * SETTLE_AFTER_MS is settled by looking its order up, as its owner, by the Idempotency-Key it was
 * submitted under (unique per user in order-management, so exactly that submit's order; a client
 * order id is not unique, a user may reuse one by hand):
 *   - found: its order id is recorded (with its status as the risk answer), and the book, the cap
 *     and a DELETE see it from then on;
 *   - not found: the decision is recorded as placing no order (order id null, an error saying so).
 *     It is never submitted again: an order placed late, on a decision made on a market that has
 *     moved on, is worse than none.
 * SETTLE_AFTER_MS is sound because order-management bounds its submits (trading/submitDeadline.ts):
 * past the deadline it rolls the transaction back instead of committing.
 * One younger than that is left alone (its submit may still be on its way), and the evaluation or
 * DELETE answers 503 with retry-after until it can be settled: it would otherwise read a book that
 * may lack that order. order-management unreachable: 503 with retry-after, nothing recorded.
 */
import type { Logger } from "pino";
import { isShuttingDown, publicServiceName, unavailable, type HttpError, type PeerClient } from "../../kit";
import { ownerHeaders, type OrderSnapshot, type StrategyOrders } from "./book";
import type { Strategy } from "./store";
import { SUBMIT_COMMIT_DEADLINE_MAX_MS } from "../../trading/submitDeadline";

/** Bound of the submit call (kit peers: the fetch is aborted past it, answer or not). */
export const ORDER_SUBMIT_TIMEOUT_MS = 5_000;
/**
 * What neither bound covers: a COMMIT order-management sent before its deadline but PostgreSQL
 * finished later, and the time between the orchestrator's send and order-management reading it.
 */
export const SETTLE_ALLOWANCE_MS = 2_000;
/**
 * Age of a decision past which its submit can no longer commit. The decision is recorded before the
 * submit is sent; order-management reads it before the orchestrator gives up (ORDER_SUBMIT_TIMEOUT_MS)
 * or it was not sent, and never sends its COMMIT more than SUBMIT_COMMIT_DEADLINE_MAX_MS after reading
 * it (its OM_SUBMIT_DEADLINE_MS may not be set higher: a config error at its start). 10 s.
 */
export const SETTLE_AFTER_MS = ORDER_SUBMIT_TIMEOUT_MS + SUBMIT_COMMIT_DEADLINE_MAX_MS + SETTLE_ALLOWANCE_MS;

/**
 * Whether a submit's answer leaves its outcome unknown: a 5xx may come after order-management's
 * COMMIT (a connection lost while committing is its 503 DATASTORE_UNAVAILABLE, like one lost before),
 * so the order may exist. Such a decision is left without an outcome, as a submit that got no answer,
 * for settleUnrecordedOrders to look up once SETTLE_AFTER_MS old. SUBMIT_DEADLINE_PASSED is the one
 * 5xx that says the submit was rolled back; a 4xx, 200 or 201 is an answer.
 */
export function submitOutcomeUnknown(status: number, code: string | undefined): boolean {
  return status >= 500 && code !== "SUBMIT_DEADLINE_PASSED";
}

/** The evaluation's answer while the outcome of its decision's submit is unknown (submitOutcomeUnknown, or no answer at all). */
export function submitOutcomePending(decisionId: string, status: number, code: string | undefined): HttpError {
  const wait = Math.ceil(SETTLE_AFTER_MS / 1000);
  return unavailable(
    "ORDER_OUTCOME_PENDING",
    `the submit of decision ${decisionId} ended ${status} ${code ?? ""}: its order may have been placed; it is looked up once it can no longer be committed; retry in ${wait} s`,
    wait,
  );
}

export interface RecoverDeps {
  orders: StrategyOrders;
  peers: PeerClient;
  log: Pick<Logger, "warn">;
}

/** The order submitted under the decision's Idempotency-Key, or undefined; throws 503 if order-management cannot say. */
async function orderOfDecision(deps: RecoverDeps, s: Strategy, decisionId: string): Promise<OrderSnapshot | undefined> {
  const r = await deps.peers
    .call<{ orders?: OrderSnapshot[] }>("order-management", `/?idempotencyKey=${encodeURIComponent(decisionId)}`, { headers: ownerHeaders(s), cutOnClose: true })
    .catch((e: HttpError) => {
      // A read the shutdown cut (kit peers cutOnClose): its caller ends as a drain answer, nothing recorded for this decision.
      if (isShuttingDown(e)) throw e;
      return { status: e.statusCode, body: {} as { orders?: OrderSnapshot[] } };
    });
  if (r.status !== 200 || !Array.isArray(r.body.orders))
    throw unavailable("UPSTREAM_UNAVAILABLE", `the order of decision ${decisionId} cannot be looked up now (${publicServiceName("order-management")} answered ${r.status}); retry`, 1);
  return r.body.orders[0];
}

/** Settles the strategy's decisions without an outcome (see above); throws 503 while one cannot be. */
export async function settleUnrecordedOrders(deps: RecoverDeps, s: Strategy): Promise<void> {
  const unrecorded = await deps.orders.unrecorded(s.strategyId);
  let youngest: number | undefined;
  for (const d of unrecorded) {
    if (d.ageMs < SETTLE_AFTER_MS) {
      youngest = Math.min(youngest ?? d.ageMs, d.ageMs);
      continue;
    }
    const order = await orderOfDecision(deps, s, d.decisionId);
    const outcome = order
      ? { orderId: order.orderId, risk: { status: order.status, rejectReason: order.rejectReason, rejectMessage: order.rejectMessage, recovered: true }, error: null }
      : {
          orderId: null,
          risk: { status: "not_placed", recovered: true },
          error: `no order was placed: order-management has no order under Idempotency-Key ${d.decisionId} ${Math.round(d.ageMs / 1000)} s after the decision (its submit did not reach it); not submitted again`,
        };
    deps.log.warn({ strategyId: s.strategyId, decisionId: d.decisionId, orderId: outcome.orderId }, "decision without a recorded order outcome settled");
    await deps.orders.recordRecovered(d.decisionId, outcome);
  }
  if (youngest !== undefined) {
    const wait = Math.max(1, Math.ceil((SETTLE_AFTER_MS - youngest) / 1000));
    throw unavailable("ORDER_OUTCOME_PENDING", `an order of this strategy submitted ${Math.round(youngest / 1000)} s ago has no recorded outcome yet (its submit may still be in flight); retry in ${wait} s`, wait);
  }
}
