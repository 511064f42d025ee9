/**
 * Oracle: the event-driven engine (and the vectorized path) against backtrader 1.9.78.123 on the
 * same bars, strategy, fees and fill rule. backtrader runs in a venv the harness creates from PyPI
 * once (cached under ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/python); the test skips, saying why,
 * only where no Python interpreter exists.
 *
 * The bars have no exact SMA ties (breakSmaTies): at a tie the crossover depends on each engine's
 * float rounding of the rolling sums, which is no property of either engine's rules.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backtest, breakSmaTies, signalsOf, strategies, syntheticSeries, type FillTiming } from "../../services/src/backtest";
import { pythonVenv, type PythonVenv } from "../harness/python";

const run = promisify(execFile);
const BACKTRADER = "backtrader==1.9.78.123";
const FAST = 10;
const SLOW = 30;

let venv: PythonVenv;
let dir: string;
const bars = syntheticSeries({ seed: 42, bars: 10_000, volatility: 0.002 });
const moved = breakSmaTies(bars, 2, [[FAST, SLOW]]);

beforeAll(async () => {
  venv = await pythonVenv("backtrader", [BACKTRADER]);
  dir = mkdtempSync(join(tmpdir(), "bt-oracle-"));
  const lines: string[] = [];
  for (let i = 0; i < bars.close.length; i++)
    lines.push([bars.time[i], bars.open[i].toFixed(2), bars.high[i].toFixed(2), bars.low[i].toFixed(2), bars.close[i].toFixed(2), bars.volume[i]].join(","));
  writeFileSync(join(dir, "bars.csv"), lines.join("\n") + "\n");
}, 900_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface OracleTrade { entryBar: number; exitBar: number; entryPrice: number; pnl: number }

const cases: Array<{ fillAt: FillTiming; quantity: number | "all"; feeBps: string }> = [
  { fillAt: "close", quantity: "all", feeBps: "10" },
  { fillAt: "nextOpen", quantity: 25, feeBps: "7.5" },
];

describe("backtrader oracle: SMA(10/30) crossover", () => {
  for (const c of cases)
    it(`fills at ${c.fillAt}, quantity ${c.quantity}, fee ${c.feeBps} bps`, async (ctx) => {
      if ("skipped" in venv) return ctx.skip(`backtrader oracle skipped: ${venv.skipped}`);
      const spec = { cash: 100_000, commission: Number(c.feeBps) / 10_000, fillAt: c.fillAt, fast: FAST, slow: SLOW, quantity: c.quantity };
      const { stdout } = await run(venv.python, [join(__dirname, "oracle", "backtrader_sma.py"), join(dir, "bars.csv"), JSON.stringify(spec)], { maxBuffer: 64 << 20, timeout: 300_000 });
      const oracle = JSON.parse(stdout) as { trades: OracleTrade[]; finalEquity: number; bars: number };
      expect(oracle.bars).toBe(bars.close.length);
      for (const mode of ["event", "vectorized"] as const) {
        const ours = backtest(bars, {
          strategy: "sma-crossover", parameters: { fast: FAST, slow: SLOW }, mode, initialCash: spec.cash, fillAt: c.fillAt,
          quantity: c.quantity, quantityStep: 1, execution: { takerFeeBps: c.feeBps, makerFeeBps: c.feeBps, slippageBps: "0", tickSize: "0.01" },
        });
        expect(oracle.trades.length).toBeGreaterThan(80);
        expect(ours.run.trades.length, `${mode}: trade count`).toBe(oracle.trades.length);
        // backtrader executes a cheat-on-close order in the next bar's cycle (at the previous close) and
        // stamps it with that bar: its bar index is ours (the bar whose close filled it) plus one.
        const stamp = c.fillAt === "close" ? 1 : 0;
        expect(ours.run.trades.map((t) => [t.entryBar + stamp, t.exitBar + stamp]), `${mode}: entry/exit bars`).toEqual(oracle.trades.map((t) => [t.entryBar, t.exitBar]));
        ours.run.trades.forEach((t, k) => {
          expect(Math.abs(t.entryPrice - oracle.trades[k].entryPrice)).toBeLessThan(1e-9);
          expect(Math.abs(t.pnl - oracle.trades[k].pnl)).toBeLessThan(1e-6);
        });
        expect(Math.abs(ours.run.finalEquity / oracle.finalEquity - 1), `${mode}: final equity ${ours.run.finalEquity} vs ${oracle.finalEquity}`).toBeLessThan(1e-9);
      }
    }, 600_000);
  it("the bars needed tie-breaking at most rarely, and the last bar has no signal", () => {
    expect(moved).toBeLessThan(bars.close.length / 100);
    // backtrader never executes an order issued on the last bar; our close-fill would. Not a rule
    // difference worth a special case: the series is chosen without one (20,000 bars of this seed has one).
    const s = signalsOf(strategies.get("sma-crossover")!, bars, { fast: FAST, slow: SLOW });
    expect([s.entries.at(-1), s.exits.at(-1)]).toEqual([0, 0]);
  });
});
