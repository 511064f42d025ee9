/**
 * performance-analytics rules, no I/O: the daily equity curve of a set of fills marked to daily
 * closes, and the figures derived from it. Floats are fine here: these are analytics over decimal
 * strings (the books of record stay in PostgreSQL as decimals).
 *
 * For a (user, strategy) with capital base C (the account's starting equity):
 *   cash_d     = - sum(buy qty x price) + sum(sell qty x price) - fees, over fills up to day d
 *   equity_d   = C + cash_d + sum(position x close_d)        (close carried forward; the last fill
 *                                                           price until a close is known)
 *   return_d   = equity_d / equity_{d-1} - 1                  (equity_{-1} = C)
 *   exposure_d = sum |position x close_d|                     (gross notional at the close)
 *   drawdown_d = (max equity up to d - equity_d) / max equity up to d
 *   Sharpe     = mean(return) / sample stdev(return) x sqrt(365)   (crypto trades every day; null
 *                with fewer than 2 returns or zero deviation; risk-free rate 0)
 */
/**
 * The version of the figures' definition above (dailyCurveOf and what it stores per day): raise it
 * with any change to how a stored figure is computed. The rollup records it with each pass; a pass
 * finding the last one computed under a lower version rebuilds every user, once (rollup.ts). 1 is
 * the definition of the releases before it was versioned; 2 folds a user's labels beyond the first
 * PERF_MAX_STRATEGIES_PER_USER into one series, OTHER (data.ts dayFlows).
 */
export const FIGURES_VERSION = 2;

export interface PerfFill { fillId: string; symbol: string; side: "buy" | "sell"; quantity: number; price: number; fee: number; tsMs: number }

export interface DailyPoint { day: string; equity: number; pnl: number; dailyReturn: number; exposure: number; drawdown: number; fees: number; trades: number }

export interface Summary {
  strategy: string;
  from: string;
  to: string;
  days: number;
  startEquity: number;
  endEquity: number;
  totalPnl: number;
  totalReturn: number;
  sharpe: number | null;
  maxDrawdown: number;
  exposure: number;
  avgExposure: number;
  fees: number;
  trades: number;
}

const DAY_MS = 86_400_000;
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const round = (x: number, dp = 10) => Math.round(x * 10 ** dp) / 10 ** dp;

/**
 * The default bound on a user's strategy series (PERF_MAX_STRATEGIES_PER_USER): a user's labels keep
 * a series of their own in the order of their first fill (ties by name); the later ones share OTHER.
 * "manual" is ranked like any label. A label first filled later never displaces a kept one; a fill
 * whose order event is late counts as manual until it arrives, and a late fill earlier than a label's
 * first moves that label up: the next pass of that user ranks again (its inputs changed).
 */
export const MAX_STRATEGIES_PER_USER = 20;
/** The series of a user's labels beyond the bound: `~` is in no label (strategyOf), so no label is named this. */
export const OTHER = "~other";

/** Strategy of an order from its client order id: `<strategy>:<anything>`, else "manual". */
export function strategyOf(clientOrderId: string | null | undefined): string {
  const m = /^([A-Za-z0-9_-]{1,32}):./.exec(clientOrderId ?? "");
  return m ? m[1] : "manual";
}

/**
 * The fills of one symbol on one UTC day, summed: all the curve needs of them, so the rollup reads
 * (and holds) one row per symbol and day however many fills there were (ClickHouse sums them).
 */
export interface DayFlow {
  day: string;
  symbol: string;
  /** Signed: buys minus sells. */
  quantity: number;
  /** sum(-signed quantity x price - fee). */
  cash: number;
  fees: number;
  trades: number;
  /** The price of the day's last fill (by time, then fill id), which marks the position until a close is known. */
  lastPrice: number;
  lastTs: number;
  lastFillId: string;
}

const later = (a: DayFlow, b: DayFlow) => a.lastTs > b.lastTs || (a.lastTs === b.lastTs && a.lastFillId > b.lastFillId);

/** Flows of the same symbol and day added up (a user's strategies into the user's total). */
export function mergeFlows(flows: DayFlow[]): DayFlow[] {
  const out = new Map<string, DayFlow>();
  for (const f of flows) {
    const key = `${f.day}\u0000${f.symbol}`;
    const m = out.get(key);
    if (!m) out.set(key, { ...f });
    else {
      const last = later(f, m) ? f : m;
      out.set(key, { ...m, quantity: m.quantity + f.quantity, cash: m.cash + f.cash, fees: m.fees + f.fees, trades: m.trades + f.trades, lastPrice: last.lastPrice, lastTs: last.lastTs, lastFillId: last.lastFillId });
    }
  }
  return [...out.values()];
}

/** The flows of individual fills (what the rollup's query computes in ClickHouse). */
export function flowsOf(fills: PerfFill[]): DayFlow[] {
  return mergeFlows(
    fills.map((f) => {
      const signed = f.side === "buy" ? f.quantity : -f.quantity;
      return { day: dayOf(f.tsMs), symbol: f.symbol, quantity: signed, cash: -signed * f.price - f.fee, fees: f.fee, trades: 1, lastPrice: f.price, lastTs: f.tsMs, lastFillId: f.fillId };
    }),
  );
}

/** closes: symbol -> (day -> close). The curve runs from the first fill's day to `lastDay`. */
export function dailyCurve(fills: PerfFill[], closes: Map<string, Map<string, number>>, capital: number, lastDay: string): DailyPoint[] {
  return dailyCurveOf(flowsOf(fills), closes, capital, lastDay);
}

/** The curve of day flows (from the first flow's day to `lastDay`, or the last flow's day if later). */
export function dailyCurveOf(flows: DayFlow[], closes: Map<string, Map<string, number>>, capital: number, lastDay: string): DailyPoint[] {
  if (!flows.length) return [];
  const byDay = new Map<string, DayFlow[]>();
  for (const f of flows) {
    const list = byDay.get(f.day);
    if (list) list.push(f);
    else byDay.set(f.day, [f]);
  }
  const days = [...byDay.keys()].sort();
  const position = new Map<string, number>();
  const mark = new Map<string, number>();
  let cash = 0;
  let prev = capital;
  let peak = capital;
  const out: DailyPoint[] = [];
  const end = Math.max(Date.parse(`${lastDay}T00:00:00Z`), Date.parse(`${days[days.length - 1]}T00:00:00Z`));
  for (let t = Date.parse(`${days[0]}T00:00:00Z`); t <= end; t += DAY_MS) {
    const day = dayOf(t);
    let fees = 0;
    let trades = 0;
    for (const f of byDay.get(day) ?? []) {
      position.set(f.symbol, (position.get(f.symbol) ?? 0) + f.quantity);
      cash += f.cash;
      mark.set(f.symbol, f.lastPrice);
      fees += f.fees;
      trades += f.trades;
    }
    let value = 0;
    let exposure = 0;
    for (const [symbol, qty] of position) {
      const close = closes.get(symbol)?.get(day);
      if (close !== undefined) mark.set(symbol, close);
      value += qty * mark.get(symbol)!;
      exposure += Math.abs(qty * mark.get(symbol)!);
    }
    const equity = capital + cash + value;
    peak = Math.max(peak, equity);
    out.push({ day, equity: round(equity), pnl: round(equity - prev), dailyReturn: round(equity / prev - 1, 12), exposure: round(exposure), drawdown: round((peak - equity) / peak, 12), fees: round(fees), trades });
    prev = equity;
  }
  return out;
}

export function sharpe(returns: number[], periodsPerYear = 365): number | null {
  if (returns.length < 2) return null;
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (returns.length - 1);
  if (variance <= 0) return null;
  return round((mean / Math.sqrt(variance)) * Math.sqrt(periodsPerYear), 8);
}

export function summarize(strategy: string, points: DailyPoint[], capital: number): Summary | null {
  if (!points.length) return null;
  const first = points[0];
  const last = points[points.length - 1];
  const startEquity = round(first.equity - first.pnl);
  return {
    strategy,
    from: first.day,
    to: last.day,
    days: points.length,
    startEquity,
    endEquity: last.equity,
    totalPnl: round(last.equity - startEquity),
    totalReturn: round(last.equity / capital - 1, 12),
    sharpe: sharpe(points.map((p) => p.dailyReturn)),
    maxDrawdown: points.reduce((a, p) => Math.max(a, p.drawdown), 0),
    exposure: last.exposure,
    avgExposure: round(points.reduce((a, p) => a + p.exposure, 0) / points.length),
    fees: round(points.reduce((a, p) => a + p.fees, 0)),
    trades: points.reduce((a, p) => a + p.trades, 0),
  };
}
