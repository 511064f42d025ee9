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
import { D, Decimal } from "../../trading/decimal";
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

/**
 * Order quantities as order-management takes them: decimals of at most 8 places below 10^12. A
 * strategy's orderQuantity must be one (`onOrderGrid`); a sell of what is held is rounded down to
 * one (positions are sums of floats here: 0.1 + 0.2 would be sent as "0.30000000000000004").
 */
const GRID = 1e8;
export function onOrderGrid(quantity: number): boolean {
  const units = quantity * GRID;
  // Whole units of 10^-8, up to the float's own rounding (a few ulps: 0.1 * 10^8 is 10000000.000000002).
  return quantity > 0 && quantity < 1e12 && Math.round(units) >= 1 && Math.abs(units - Math.round(units)) <= Math.max(1e-6, 4 * Number.EPSILON * units);
}
export const floorToOrderGrid = (quantity: number): number => Math.floor(quantity * GRID + 1e-6) / GRID;
/**
 * The decimal text of a quantity on the grid, exact: the float's shortest decimal (String(), which
 * JSON and the client's settings show), cut to 8 places (never up: a sell stays within what is held),
 * written without an exponent ("1e-7" is what String() gives, and order-management refuses). toFixed(8)
 * wrote the binary value's digits instead: 999999999999.99 was sent as "999999999999.98999023".
 */
export const orderQuantityText = (quantity: number): string => D(quantity).toDecimalPlaces(8, Decimal.ROUND_DOWN).toFixed();

export function decide(s: StrategyLimits, i: DecisionInput): Decision {
  if (i.strategyStopped) return { action: "skip", quantity: 0, reason: "strategy stopped by its loss limit" };
  if (i.tradingState === "halted") return { action: "skip", quantity: 0, reason: "trading is halted" };
  const p = i.probabilityUp;
  const pending = i.pending ?? { buy: 0, sell: 0 };
  const sellable = i.position - pending.sell;
  const sell = floorToOrderGrid(Math.min(s.orderQuantity, sellable));
  if (p <= s.sellBelow && sell > 0) {
    return { action: "sell", quantity: sell, reason: `P(up) ${p.toFixed(3)} <= sellBelow ${s.sellBelow}` };
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
