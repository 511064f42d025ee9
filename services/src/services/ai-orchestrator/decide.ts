/**
 * The orchestrator's decision rule, pure: from one prediction, the similar past regimes, the
 * strategy's position and limits, and the trading state, what to do for one symbol.
 *   buy   P(up) >= buyAbove, the regimes agree (share of similar windows that went up >=
 *         minRegimeAgreement), position + quantity <= maxPosition, trading state active
 *   sell  P(up) <= sellBelow and a long position to reduce (allowed when reduce_only too)
 *   hold  otherwise; skip = a hard stop (halted, strategy stopped) with the reason
 * Long-only: the strategy never sells more than it holds. Orders still working count: a buy not yet
 * filled takes room under maxPosition, a sell not yet filled is no longer there to sell (an order on
 * the paper exchange fills on a later bar; an evaluation in between would otherwise order again).
 */
import type { TradingState } from "../../trading/tradingState";

export interface StrategyLimits {
  buyAbove: number;
  sellBelow: number;
  orderQuantity: number;
  maxPosition: number;
  minRegimeAgreement: number;
}

export interface DecisionInput {
  probabilityUp: number;
  regimes: ReadonlyArray<{ forwardReturn: number }>;
  position: number;
  /** Unfilled quantity of the strategy's working buy and sell orders in this symbol. */
  pending?: { buy: number; sell: number };
  tradingState: TradingState;
  strategyStopped: boolean;
}

export interface Decision {
  action: "buy" | "sell" | "hold" | "skip";
  quantity: number;
  reason: string;
}

export function regimeAgreement(regimes: ReadonlyArray<{ forwardReturn: number }>): number | undefined {
  if (regimes.length === 0) return undefined;
  return regimes.filter((r) => r.forwardReturn > 0).length / regimes.length;
}

export function decide(s: StrategyLimits, i: DecisionInput): Decision {
  if (i.strategyStopped) return { action: "skip", quantity: 0, reason: "strategy stopped by its loss limit" };
  if (i.tradingState === "halted") return { action: "skip", quantity: 0, reason: "trading is halted" };
  const p = i.probabilityUp;
  const pending = i.pending ?? { buy: 0, sell: 0 };
  const sellable = i.position - pending.sell;
  if (p <= s.sellBelow && sellable > 0) {
    return { action: "sell", quantity: Math.min(s.orderQuantity, sellable), reason: `P(up) ${p.toFixed(3)} <= sellBelow ${s.sellBelow}` };
  }
  if (p >= s.buyAbove) {
    if (i.tradingState === "reduce_only") return { action: "hold", quantity: 0, reason: "reduce-only: no new exposure" };
    const agreement = regimeAgreement(i.regimes);
    if (agreement !== undefined && agreement < s.minRegimeAgreement)
      return { action: "hold", quantity: 0, reason: `similar regimes disagree: ${(agreement * 100).toFixed(0)}% went up < ${(s.minRegimeAgreement * 100).toFixed(0)}%` };
    const room = s.maxPosition - i.position - pending.buy;
    if (room < s.orderQuantity) {
      const held = pending.buy > 0 ? `${i.position} (+${pending.buy} in working buys)` : `${i.position}`;
      return { action: "hold", quantity: 0, reason: `position ${held} at its limit ${s.maxPosition}` };
    }
    return { action: "buy", quantity: s.orderQuantity, reason: `P(up) ${p.toFixed(3)} >= buyAbove ${s.buyAbove}` };
  }
  return { action: "hold", quantity: 0, reason: `P(up) ${p.toFixed(3)} between sellBelow ${s.sellBelow} and buyAbove ${s.buyAbove}` };
}
