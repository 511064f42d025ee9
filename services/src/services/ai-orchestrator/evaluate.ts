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
import { HttpError, type PeerClient } from "../../kit";
import { nearestRegimes, type Regime } from "../../ml/regimes";
import { isTerminal, type OrderStatus } from "../../trading/orderState";
import { tradingStateFor } from "../../trading/tradingState";
import { decide } from "./decide";
import type { DecisionRecord, OrchestratorStore, Strategy } from "./store";

export interface EvaluateDeps {
  store: OrchestratorStore;
  peers: PeerClient;
  redis: Redis;
  weaviate?: () => Promise<WeaviateClient>;
  regimesK: number;
  predictTimeoutMs: number;
  /** Bars (of the model's interval) a prediction's latest bar may be behind the clock. */
  maxPredictionAgeBars: number;
  log: Logger;
}

interface PredictResponse {
  modelVersion: string;
  /** Length of the bars the model predicts from (ml-predictor's ML_INTERVAL). */
  intervalMs?: number;
  predictions: Array<{ symbol: string; probabilityUp: number; barTime: string; close: number; features: Record<string, number>; regimeVector: number[] }>;
}

interface OrderSnapshot {
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  quantity: string;
  status: OrderStatus;
  filledQuantity: string;
  avgFillPrice: string | null;
  fees: string;
  rejectReason: string | null;
  rejectMessage: string | null;
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

const ownerHeaders = (s: Strategy) => ({ "x-user-id": s.userId, "x-user-role": "trader" });

/** Position per symbol, the unfilled quantity of its working orders, and the cash flow of the strategy's fills (from order-management). */
async function book(deps: EvaluateDeps, s: Strategy) {
  const position = new Map<string, number>();
  const pending = new Map<string, { buy: number; sell: number }>();
  let cash = 0;
  for (const orderId of await deps.store.orderIds(s.strategyId)) {
    const r = await deps.peers.call<OrderSnapshot>("order-management", `/${orderId}`, { headers: ownerHeaders(s) });
    // A strategy's own order not answered is not "no fills": the position and the loss stop would
    // be computed without it (and buy past maxPosition). The evaluation fails; the next tick retries.
    if (r.status !== 200) {
      throw new HttpError(503, "UPSTREAM_UNAVAILABLE", `the strategy's orders cannot be read now (order-management answered ${r.status}); retry`, undefined, { "retry-after": "1" });
    }
    const o = r.body;
    const q = Number(o.filledQuantity);
    if (!isTerminal(o.status)) {
      const p = pending.get(o.symbol) ?? { buy: 0, sell: 0 };
      p[o.side] += Math.max(0, Number(o.quantity) - q);
      pending.set(o.symbol, p);
    }
    if (!q) continue;
    const px = Number(o.avgFillPrice ?? 0);
    const sign = o.side === "buy" ? 1 : -1;
    position.set(o.symbol, (position.get(o.symbol) ?? 0) + sign * q);
    cash += -sign * q * px - Number(o.fees);
  }
  return { position, pending, cash };
}

export async function evaluateStrategy(deps: EvaluateDeps, s: Strategy): Promise<DecisionRecord[]> {
  const out: DecisionRecord[] = [];
  const { position, pending, cash } = await book(deps, s);
  // An unreachable or slow ml-predictor is a recorded refusal like any other, not a failed evaluation.
  const pr = await deps.peers
    .call<PredictResponse & { error?: { code: string; message: string } }>("ml-predictor", "/internal/predict", { body: { symbols: s.symbols }, timeoutMs: deps.predictTimeoutMs })
    .catch((e: HttpError) => ({ status: e.statusCode, body: { error: { code: e.code, message: e.message } } as PredictResponse & { error?: { code: string; message: string } } }));
  // The trading state is read after the slow calls (the prediction, each symbol's regimes), right
  // before each decision: a kill switch set while they ran applies to the decision, not the next one.
  const stateNow = async () => (await tradingStateFor(deps.redis, s.userId)).effective;
  const base = { strategyId: s.strategyId, userId: s.userId, features: null, regimes: [], orderId: null, risk: null, error: null };
  if (pr.status !== 200) {
    const tradingState = await stateNow();
    const err = pr.body.error;
    for (const symbol of s.symbols)
      out.push(
        await deps.store.recordDecision({
          ...base, tradingState, symbol, modelVersion: null, probabilityUp: null, barTime: null, decisionPrice: null, positionBefore: position.get(symbol) ?? 0,
          action: "skip", quantity: 0, reason: `no prediction: ${err?.code ?? pr.status}`, error: err?.message ?? String(pr.status),
        }),
      );
    // A recorded refusal is an evaluation: the strategy waits its everySeconds like after any other
    // (left due, it was evaluated again at every scheduler tick, one skip row per symbol each time).
    await deps.store.markEvaluated(s.strategyId);
    return out;
  }

  // Mark to market at the latest closes: the strategy's own loss stop.
  const marks = new Map(pr.body.predictions.map((p) => [p.symbol, p.close]));
  let pnl = cash;
  for (const [symbol, q] of position) pnl += q * (marks.get(symbol) ?? 0);
  let stopped = s.status === "stopped";
  if (!stopped && pnl <= -s.stopLoss) {
    stopped = true;
    await deps.store.stop(s.strategyId, `loss ${pnl.toFixed(2)} reached the stop ${s.stopLoss}`);
    deps.log.warn({ strategyId: s.strategyId, pnl }, "strategy stopped by its loss limit");
  }

  for (const p of pr.body.predictions) {
    let regimes: Regime[] = [];
    let regimeError: string | null = null;
    if (deps.weaviate) {
      try {
        regimes = await nearestRegimes(await deps.weaviate(), pr.body.modelVersion, p.regimeVector, deps.regimesK);
      } catch (e) {
        regimeError = `regimes unavailable: ${(e as Error).message}`;
      }
    }
    const held = position.get(p.symbol) ?? 0;
    const tradingState = await stateNow();
    const stale = stalePrediction(p.barTime, pr.body.intervalMs, deps.maxPredictionAgeBars);
    const d = stale
      ? { action: "skip" as const, quantity: 0, reason: stale }
      : decide(s, { probabilityUp: p.probabilityUp, regimes, position: held, pending: pending.get(p.symbol), tradingState, strategyStopped: stopped });
    // Recorded before its order is submitted: decided_at is stamped by PostgreSQL when the
    // decision is made, the same clock that stamps the order's created_at in order-management
    // (ai-chain-analytics' decision -> order latency subtracts the two), and a crash between the
    // two steps leaves the decision on record (the order, if any, carries its id).
    const rec = await deps.store.recordDecision({
      ...base, tradingState, symbol: p.symbol, modelVersion: pr.body.modelVersion, probabilityUp: p.probabilityUp, barTime: p.barTime,
      decisionPrice: p.close, features: p.features, regimes, positionBefore: held, action: d.action, quantity: d.quantity, reason: d.reason,
      error: regimeError,
    });
    if (d.action !== "buy" && d.action !== "sell") {
      out.push(rec);
      continue;
    }
    const r = await deps.peers.call<OrderSnapshot & { error?: { code: string; message: string } }>("order-management", "/", {
      headers: { ...ownerHeaders(s), "idempotency-key": rec.decisionId },
      body: { symbol: p.symbol, side: d.action, type: "market", quantity: String(d.quantity), clientOrderId: rec.decisionId },
    });
    const outcome =
      r.status === 200 || r.status === 201
        ? { orderId: r.body.orderId, risk: { status: r.body.status, rejectReason: r.body.rejectReason, rejectMessage: r.body.rejectMessage }, error: regimeError }
        : { orderId: null, risk: { status: "error", code: r.body.error?.code ?? null }, error: `order-management ${r.status}: ${r.body.error?.message ?? ""}` };
    out.push(await deps.store.recordOrderOutcome(rec, outcome));
  }
  await deps.store.markEvaluated(s.strategyId);
  return out;
}
