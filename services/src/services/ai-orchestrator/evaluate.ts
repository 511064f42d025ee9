/**
 * One evaluation of a strategy: its position and PnL from order-management (the orders it placed),
 * its own loss stop, the trading state (kill switch), predictions from ml-predictor, the k most
 * similar past regimes from Weaviate, the decision rule (decide.ts), and an order through
 * order-management (which applies pre-trade risk; the engine executes on the paper exchange unless
 * the stack trades live). Every symbol's decision is recorded with all of its inputs, including
 * the refusals (model too old, missing features, halted) that produced no order.
 */
import type { Logger } from "pino";
import type { Redis } from "ioredis";
import type { WeaviateClient } from "weaviate-client";
import { accountDeleted, HttpError, isShuttingDown, shuttingDown, unavailable, unlessAborted, withTimeout, type PeerClient, type PostgresClient } from "../../kit";
import { nearestRegimes, type Regime } from "../../ml/regimes";
import { tradingStateFor } from "../../trading/tradingState";
import { book, ownerHeaders, type OrderSnapshot, type StrategyOrders } from "./book";
import { decide, orderQuantityText } from "./decide";
import { DECIDED, failedAnswer, type EvaluationAnswer } from "./evaluation-answer";
import { EvaluationInProgress, EvaluationLease } from "./lease";
import { ORDER_SUBMIT_TIMEOUT_MS, settleUnrecordedOrders, submitOutcomePending, submitOutcomeUnknown } from "./recover";
import type { DecisionRecord, NewDecision, OrchestratorStore, Strategy } from "./store";

export interface EvaluateDeps {
  store: OrchestratorStore;
  /** The evaluation leases' database (lease.ts): what a disable in any replica waits for. */
  pg: PostgresClient;
  orders: StrategyOrders;
  peers: PeerClient;
  redis: Redis;
  weaviate?: () => Promise<WeaviateClient>;
  regimesK: number;
  predictTimeoutMs: number;
  /** Bound on one similar-regimes lookup (ORCH_REGIMES_TIMEOUT_MS). */
  regimesTimeoutMs: number;
  /** Aborted PEER_CLOSE_GRACE_MS into the service's close: cuts a regimes lookup as the peer calls are cut (kit peers cutOnClose). */
  cut: AbortSignal;
  /** Aborted as the service's close begins (kit ctx.closing): no order is submitted from then on (evaluateLeased says why). */
  closing: AbortSignal;
  /** Bars (of the model's interval) a prediction's latest bar may be behind the clock. */
  maxPredictionAgeBars: number;
  log: Logger;
  /** Records a failed evaluation (backoff.ts) and answers what its callers get (index.ts). */
  failed: (strategyId: string, e: unknown) => Promise<unknown>;
}

interface PredictResponse {
  modelVersion: string;
  /** Length of the bars the model predicts from (ml-predictor's ML_INTERVAL). */
  intervalMs?: number;
  predictions: Array<{ symbol: string; probabilityUp: number; barTime: string; close: number; features: Record<string, number>; regimeVector: number[] }>;
}

/**
 * Why a prediction is too old to act on, or undefined. ml-predictor answers from the latest bars
 * it has, however old (ML_MAX_BAR_AGE_SECONDS is unset by default): when market data stops, its
 * P(up) and close describe a market that has moved on, and an order on them would be blind.
 */
export function stalePrediction(barTime: string, intervalMs: number | undefined, maxAgeBars: number, now = Date.now()): string | undefined {
  if (!(intervalMs && intervalMs > 0)) return "prediction without its bar interval: its age cannot be judged";
  const age = now - Date.parse(barTime);
  if (!(age <= maxAgeBars * intervalMs))
    return `stale prediction: its latest bar opened at ${barTime}, ${Math.round(age / 1000)} s ago, more than ${maxAgeBars} bars of ${intervalMs / 1000} s`;
  return undefined;
}

/**
 * The evaluation's end when its strategy's owner was deleted (its decision's insert reads the tombstone under the
 * account's lock, store.recordDecision): 403 ACCOUNT_DELETED naming userId, nothing more recorded, no backoff.
 */
const deletedDuring = (s: Strategy) => accountDeleted(s.userId, `strategy ${s.strategyId} decides no more: nothing of this evaluation is recorded from the deletion on`);
export const isAccountDeleted = (e: unknown): boolean => e instanceof HttpError && e.code === "ACCOUNT_DELETED";

/**
 * The evaluation's end when the shutdown cut one of its slow calls (the prediction, a regimes lookup,
 * an order lookup: kit peers cutOnClose, PEER_CLOSE_GRACE_MS into the close). They all come before
 * its first decision is recorded, so it decided nothing and recorded no decision: a 503 SHUTTING_DOWN
 * (a drain answer, logged at warn), no failure of the strategy's (no backoff: it stays due, and the
 * next replica or start evaluates it).
 */
function evaluationCut(deps: EvaluateDeps, s: Strategy, cause: HttpError): HttpError {
  deps.log.warn({ strategyId: s.strategyId, cause: cause.message }, "evaluation cut by the shutdown before it decided anything");
  return shuttingDown(`the evaluation of strategy ${s.strategyId} was cut before it decided anything: no decision of it is recorded`);
}

/** Records a decision; ends the evaluation (deletedDuring) once the owner's account is deleted. */
async function record(deps: EvaluateDeps, s: Strategy, d: NewDecision): Promise<DecisionRecord> {
  const rec = await deps.store.recordDecision(d);
  if (rec === "account_deleted") throw deletedDuring(s);
  return rec;
}

/** The prediction's most similar past regimes in Weaviate, or none and why; a 503 SHUTTING_DOWN once the shutdown cuts the lookup (deps.cut). */
async function similarRegimes(deps: EvaluateDeps, s: Strategy, modelVersion: string, p: PredictResponse["predictions"][number]): Promise<{ regimes: Regime[]; regimeError: string | null }> {
  if (!deps.weaviate) return { regimes: [], regimeError: null };
  const lookup = deps.weaviate().then((c) => nearestRegimes(c, modelVersion, p.regimeVector, deps.regimesK));
  try {
    // Bounded: the client waits ~20 s per call for a gRPC port that does not answer, and a disable waits for the evaluation.
    const cut = unlessAborted(lookup, deps.cut, () => shuttingDown("its similar-regimes lookup was cut"));
    return { regimes: await withTimeout(cut, deps.regimesTimeoutMs, "Weaviate"), regimeError: null };
  } catch (e) {
    if (isShuttingDown(e)) throw e;
    // The decision is its owner's to read (GET /decisions/:id): the client's message, which names
    // Weaviate's address and port, its gRPC method or a server's own text, goes to the log only.
    deps.log.warn({ strategyId: s.strategyId, symbol: p.symbol, err: { message: (e as Error).message } }, "similar regimes unavailable");
    return { regimes: [], regimeError: "regimes unavailable: the similar-regimes store did not answer (logged with the decision's strategy and symbol)" };
  }
}

/** What a closing replica records instead of a buy or sell it will not submit (evaluateLeased). */
export const NOT_SUBMITTED_ON_CLOSE = "not submitted: this replica began shutting down during the evaluation, and no order is submitted once it has (the next evaluation decides again)";
const notSubmittedOnClose = (d: { action: string; reason: string }) => `${NOT_SUBMITTED_ON_CLOSE}; it would ${d.action} (${d.reason})`;

export async function evaluateStrategy(deps: EvaluateDeps, s: Strategy): Promise<DecisionRecord[]> {
  const lease = new EvaluationLease(deps.pg, s.strategyId);
  // Taken before the book is read: an evaluation of the strategy running in another replica would
  // place its order on the same position (lease.ts). Not held (disabled meanwhile): refusals only.
  // A failure to take it (PostgreSQL) is a failed evaluation like any other (backoff.ts).
  const taken = await lease.renew().catch(async (e: unknown) => Promise.reject(await deps.failed(s.strategyId, e)));
  if (taken.kind === "busy") throw new EvaluationInProgress(s.strategyId, taken.until, taken.evaluationId);
  const submit = { unanswered: false };
  // What every caller gets, here and in other replicas (evaluation-answer.ts): recorded with the lease's end.
  let answer: EvaluationAnswer | null = null;
  try {
    const decisions = await evaluateLeased(deps, s, lease, submit);
    answer = DECIDED;
    return decisions;
  } catch (e) {
    // Cut by the shutdown: no answer is recorded for callers in other replicas (told it did not come, they evaluate again).
    if (isShuttingDown(e)) throw evaluationCut(deps, s, e as HttpError);
    // A deletion of the owner is no failure of the strategy's: its strategies are never due again.
    const failure = isAccountDeleted(e) ? e : await deps.failed(s.strategyId, e);
    answer = failedAnswer(failure);
    throw failure;
  } finally {
    // A submit without an answer may still commit its order: its lease is kept to expiry for a disable's wait (lease.ts).
    await (submit.unanswered ? lease.keep(answer) : lease.release(answer)).catch((err) => deps.log.warn({ err, strategyId: s.strategyId }, "evaluation lease not released (it expires)"));
  }
}

async function evaluateLeased(deps: EvaluateDeps, s: Strategy, lease: EvaluationLease, submit: { unanswered: boolean }): Promise<DecisionRecord[]> {
  const out: DecisionRecord[] = [];
  // Orders submitted by an evaluation that did not see the answer are found first: the book counts them.
  await settleUnrecordedOrders(deps, s);
  const { position, pending, cash } = await book(deps, s);
  // An unreachable or slow ml-predictor is a recorded refusal like any other, not a failed evaluation;
  // a call the shutdown cut (a read: cutOnClose) ends the evaluation (evaluationCut), recording nothing.
  const pr = await deps.peers
    .call<PredictResponse & { error?: { code: string; message: string } }>("ml-predictor", "/internal/predict", { body: { symbols: s.symbols }, timeoutMs: deps.predictTimeoutMs, cutOnClose: true })
    .catch((e: HttpError) => {
      if (isShuttingDown(e)) throw e;
      return { status: e.statusCode, body: { error: { code: e.code, message: e.message } } as PredictResponse & { error?: { code: string; message: string } } };
    });
  // The trading state is read after the slow calls (the prediction, each symbol's regimes), right
  // before each decision: a kill switch set while they ran applies to the decision, not the next one.
  const stateNow = async () => (await tradingStateFor(deps.redis, s.userId)).effective;
  const base = { strategyId: s.strategyId, userId: s.userId, features: null, regimes: [], orderId: null, risk: null, error: null, evaluationId: lease.token };
  if (pr.status !== 200) {
    const tradingState = await stateNow();
    const err = pr.body.error;
    for (const symbol of s.symbols)
      out.push(
        await record(deps, s, {
          ...base, tradingState, symbol, modelVersion: null, probabilityUp: null, barTime: null, decisionPrice: null, positionBefore: position.get(symbol) ?? 0,
          action: "skip", quantity: 0, reason: `no prediction: ${err?.code ?? pr.status}`, error: err?.message ?? String(pr.status),
        }),
      );
    // A recorded refusal is an evaluation: the strategy waits its everySeconds like after any other
    // (left due, it was evaluated again at every scheduler tick, one skip row per symbol each time).
    await deps.store.markEvaluated(s.strategyId);
    return out;
  }

  // Every symbol's similar regimes before anything is decided or written (the loss stop included): the
  // lookups are the last calls a shutdown cuts, and a cut evaluation has then recorded nothing.
  const lookups: Array<{ regimes: Regime[]; regimeError: string | null }> = [];
  for (const p of pr.body.predictions) lookups.push(await similarRegimes(deps, s, pr.body.modelVersion, p));

  // Mark to market at the latest closes: the strategy's own loss stop. A close from a stale
  // prediction (or none) is not a mark: the stop would trip on a price the market has left, or
  // stay quiet through a loss. The stop is then not judged, and no decision of this evaluation
  // acts (each records why): more exposure, or a sell, with the loss unknown, is blind.
  const marks = new Map<string, number>();
  const staleMarks = new Map<string, string>();
  for (const p of pr.body.predictions) {
    const stale = stalePrediction(p.barTime, pr.body.intervalMs, deps.maxPredictionAgeBars);
    if (stale) staleMarks.set(p.symbol, stale);
    else marks.set(p.symbol, p.close);
  }
  let stopped = s.status === "stopped";
  let unjudged: string | undefined;
  if (!stopped) {
    const unmarked = [...position].filter(([symbol, q]) => q !== 0 && !marks.has(symbol)).map(([symbol]) => symbol);
    if (unmarked.length > 0) {
      unjudged = `loss stop not judged: no fresh close for ${unmarked.map((u) => `${u} (${staleMarks.get(u) ?? "no prediction"})`).join(", ")}`;
      deps.log.warn({ strategyId: s.strategyId, symbols: unmarked }, "loss stop not judged: stale marks");
    } else {
      let pnl = cash;
      for (const [symbol, q] of position) pnl += q * (marks.get(symbol) ?? 0);
      if (pnl <= -s.stopLoss) {
        stopped = true;
        await deps.store.stop(s.strategyId, `loss ${pnl.toFixed(2)} reached the stop ${s.stopLoss}`);
        deps.log.warn({ strategyId: s.strategyId, pnl }, "strategy stopped by its loss limit");
      }
    }
  }

  for (const [i, p] of pr.body.predictions.entries()) {
    const { regimes, regimeError } = lookups[i];
    const held = position.get(p.symbol) ?? 0;
    const tradingState = await stateNow();
    // A disable or delete (of the strategy, or of its owner's account by an admin) while this evaluation ran applies to its remaining decisions.
    // The lease is taken first: a disable committed after this read waits for it, in any replica (lease.ts).
    await lease.renew();
    const lifecycle = await deps.store.lifecycle(s.strategyId);
    const stale = stalePrediction(p.barTime, pr.body.intervalMs, deps.maxPredictionAgeBars);
    const refusal = lifecycle === "enabled" ? (stale ?? unjudged) : lifecycle.startsWith("account") ? `the owner's ${lifecycle}: no orders` : `strategy ${lifecycle} during the evaluation`;
    const decided = refusal
      ? { action: "skip" as const, quantity: 0, reason: refusal }
      : decide(s, { probabilityUp: p.probabilityUp, regimes, position: held, pending: pending.get(p.symbol), tradingState, strategyStopped: stopped });
    // No order is submitted once the service's close began. The submits are never cut (writes: their
    // outcome would be unknown), each bounded by ORDER_SUBMIT_TIMEOUT_MS, and 20 symbols' one after
    // another outlasted SHUTDOWN_TIMEOUT_MS (the process was killed mid-evaluation, exit 1). Now the
    // one in flight finishes (its submit and outcome, within the shutdown's budget), and a later buy
    // or sell is recorded as a refusal, before any write of its own: no decision is left without its
    // order's outcome, and holds and skips are recorded as ever.
    const d = deps.closing.aborted && (decided.action === "buy" || decided.action === "sell") ? { action: "skip" as const, quantity: 0, reason: notSubmittedOnClose(decided) } : decided;
    // Recorded before its order is submitted: decided_at is stamped by PostgreSQL when the
    // decision is made, the same clock that stamps the order's created_at in order-management
    // (ai-chain-analytics' decision -> order latency subtracts the two), and a crash between the
    // two steps leaves the decision on record (the order, if any, carries its id: recover.ts finds it).
    const rec = await record(deps, s, {
      ...base, tradingState, symbol: p.symbol, modelVersion: pr.body.modelVersion, probabilityUp: p.probabilityUp, barTime: p.barTime,
      decisionPrice: p.close, features: p.features, regimes, positionBefore: held, action: d.action, quantity: d.quantity, reason: d.reason,
      error: regimeError,
    });
    if (d.action !== "buy" && d.action !== "sell") {
      out.push(rec);
      continue;
    }
    // Past its window the lease may end before this submit could commit, and a disable answer with it:
    // not submitted (recover.ts records the decision as placing no order).
    if (!lease.coversSubmit())
      throw unavailable("EVALUATION_LEASE_LAPSED", `the evaluation of strategy ${s.strategyId} took too long between its decision and its order: not submitted`, 5);
    submit.unanswered = true;
    const r = await deps.peers.call<OrderSnapshot & { error?: { code: string; message: string } }>("order-management", "/", {
      headers: { ...ownerHeaders(s), "idempotency-key": rec.decisionId },
      body: { symbol: p.symbol, side: d.action, type: "market", quantity: orderQuantityText(d.quantity), clientOrderId: rec.decisionId },
      // recover.ts settles a decision left without an outcome once past this bound (with a margin).
      timeoutMs: ORDER_SUBMIT_TIMEOUT_MS,
    }).catch((e: unknown) => {
      // No answer (timed out, connection refused or lost: kit peers' 504/502): it may have been sent and
      // committed all the same, so it is left without an outcome like a 5xx, with the same 503.
      throw e instanceof HttpError ? submitOutcomePending(rec.decisionId, e.statusCode, e.code) : e;
    });
    // Left without an outcome (settled by recover.ts) when the 5xx may have come after the order was committed.
    if (submitOutcomeUnknown(r.status, r.body.error?.code)) throw submitOutcomePending(rec.decisionId, r.status, r.body.error?.code);
    submit.unanswered = false;
    const outcome =
      r.status === 200 || r.status === 201
        ? { orderId: r.body.orderId, risk: { status: r.body.status, rejectReason: r.body.rejectReason, rejectMessage: r.body.rejectMessage }, error: regimeError }
        : { orderId: null, risk: { status: "error", code: r.body.error?.code ?? null }, error: `order-management ${r.status}: ${r.body.error?.message ?? ""}` };
    out.push(await deps.store.recordOrderOutcome(rec, outcome));
  }
  await deps.store.markEvaluated(s.strategyId);
  return out;
}
