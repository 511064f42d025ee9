/**
 * ml-predictor's drift window (`ml_prediction_drift_psi`, `GET /api/ml/status`'s drift), pure (found by
 * session 43's business-logic hunt): the window was the last 2,000 predictions served, whoever asked,
 * and `POST /api/ml/predict` is open to any trader, so one user predicting the same symbols' same bars
 * over and over filled it with those and set the figure. Each symbol's bar now counts once. (The model
 * tests train with Python, not run here: the window is tested alone.)
 */
import { describe, expect, it } from "vitest";
import { PredictionDrift } from "../../services/src/ml/drift";

const BINS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const UNIFORM = new Array(10).fill(0.1);
const MINUTE = 60_000;

/** `n` bars of `symbols`, one prediction each, spread evenly over the bins (what the reference saw). */
function served(drift: PredictionDrift, n: number, symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"], from = 0): void {
  for (let i = from; i < from + n; i++) drift.add(((i % 10) + 0.5) / 10, symbols[i % symbols.length], Math.floor(i / symbols.length) * MINUTE);
}

describe("ml-predictor drift window: each symbol's bar once (session 43)", () => {
  it("one user asking for the same bar over and over does not set the figure", () => {
    const drift = new PredictionDrift(BINS, UNIFORM, 2000);
    served(drift, 400);
    const before = drift.value()!;
    expect(before).toBeLessThan(0.01);
    // The same bar of one symbol, 5,000 times (the gateway lets 300 requests a minute through).
    for (let i = 0; i < 5000; i++) drift.add(0.97, "XRPUSDT", 42 * MINUTE);
    // Before: the window held 2,000 copies of 0.97, PSI ~ 8.3 (a "large shift" on the dashboard).
    expect(drift.count).toBe(401);
    expect(drift.value()).toBeLessThan(0.05);
  });

  it("the window still slides over the last `size` bars, and a bar that left it counts again", () => {
    const drift = new PredictionDrift(BINS, UNIFORM, 100);
    for (let i = 0; i < 100; i++) drift.add(0.95, "OLDUSDT", i * MINUTE);
    expect(drift.value()).toBeGreaterThan(1);
    served(drift, 100, ["BTCUSDT"], 1000);
    expect(drift.count).toBe(100);
    expect(drift.value()).toBeLessThan(0.01);
    // OLDUSDT's first bar left the window: predicted again (another replica's model, say), it counts.
    drift.add(0.95, "OLDUSDT", 0);
    expect(drift.fractions()[9]).toBeCloseTo(0.11, 5);
  });

  it("no figure until DRIFT_MIN_PREDICTIONS distinct bars", () => {
    const drift = new PredictionDrift(BINS, UNIFORM);
    for (let i = 0; i < 500; i++) drift.add(0.5, "BTCUSDT", 0);
    expect(drift.value()).toBeUndefined();
  });
});
