/** risk-analyzer's rules, without I/O (the risk mathematics itself is shared: src/trading/risk.ts). */
import { HttpError } from "../../kit";
import type { RiskContext, RiskDecision, RiskLimits } from "../../trading/risk";
import { historicalVaR, simpleReturns } from "../../trading/risk";

/** Historical VaR of a close series; fewer than three closes is not enough data. */
export function valueAtRisk(symbol: string, closes: number[], confidence: number, exposure: string) {
  if (closes.length < 3) throw new HttpError(404, "NOT_ENOUGH_DATA", `only ${closes.length} closes of ${symbol} are recorded at that timeframe: at least 3 are needed`);
  const r = historicalVaR(simpleReturns(closes.map(String)), confidence, exposure);
  return { symbol, confidence, exposure, ...r, method: "historical" as const };
}

/** The answer of a pre-trade check: the decision, the context it was taken in, the limits. */
export function checkAnswer(decision: RiskDecision, context: RiskContext, limits: RiskLimits) {
  return {
    ...decision,
    context: { lastPrice: context.lastPrice ?? null, position: String(context.position), dailyPnl: String(context.dailyPnl), ordersInWindow: context.recentOrderTimes.length },
    limits,
  };
}
