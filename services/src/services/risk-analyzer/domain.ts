/** risk-analyzer's rules, without I/O (the risk mathematics itself is shared: src/trading/risk.ts). */
import { HttpError } from "../../kit";
import type { RiskContext, RiskDecision, RiskLimits } from "../../trading/risk";
import { historicalVaR, simpleReturns } from "../../trading/risk";

/**
 * Historical VaR of a close series. It needs two returns: fewer closes, or closes that give fewer
 * usable returns (a close of 0 stored by a writer that skipped the bar rules gives none), is not
 * enough data (404), not a VaR of nothing (historicalVaR throws on no return: it was a 500).
 */
export function valueAtRisk(symbol: string, closes: number[], confidence: number, exposure: string) {
  const returns = simpleReturns(closes.map(String)).filter(Number.isFinite);
  if (returns.length < 2) throw new HttpError(404, "NOT_ENOUGH_DATA", `only ${returns.length} usable returns of ${symbol} (from ${closes.length} closes) are recorded at that timeframe: at least 2 are needed`);
  const r = historicalVaR(returns, confidence, exposure);
  return { symbol, confidence, exposure, ...r, method: "historical" as const };
}

/** The answer of a pre-trade check: the decision, the context it was taken in, the limits. */
export function checkAnswer(decision: RiskDecision, context: RiskContext, limits: RiskLimits) {
  return {
    ...decision,
    context: { lastPrice: context.lastPrice ?? null, position: String(context.position), dailyPnl: String(context.dailyPnl), ordersInWindow: context.recentOrderTimes.length, openOrders: context.openOrders ?? 0 },
    limits,
  };
}
