/**
 * Training (Python, ml/trading_ml/features.py) and serving (TypeScript, services/src/ml/features.ts)
 * compute the same features from the same bars: every value of every row agrees to 1e-9.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FEATURE_NAMES, LOOKBACK, barsProblem, featuresAt, type OhlcvBar } from "../../services/src/ml/features";
import { barsCsv, plantedBars, type PlantedBar } from "../helpers/planted-bars";
import { ML_DIR, mlPython } from "../helpers/ml-python";
import { runOk } from "../harness/run";

interface PyRow {
  symbol: string;
  openTime: number;
  values: Record<string, number>;
}

async function pythonFeatures(bars: PlantedBar[]): Promise<PyRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "parity-"));
  try {
    writeFileSync(join(dir, "bars.csv"), barsCsv(bars));
    const out = await runOk(await mlPython(), ["-m", "trading_ml.dump_features", "--bars", join(dir, "bars.csv")], { env: { ...process.env, PYTHONPATH: ML_DIR } });
    return out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as PyRow);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Flat stretches exercise the division guards (RSI 50, volume z 0, channel position 0.5). */
function withFlatStretch(bars: PlantedBar[]): PlantedBar[] {
  return bars.map((b, i) => (i >= 150 && i < 260 ? { ...b, open: 100, high: 100, low: 100, close: 100, volume: 5 } : b));
}

describe("features: Python training job vs TypeScript serving", () => {
  let bars: PlantedBar[];
  let py: PyRow[];
  beforeAll(async () => {
    bars = [
      ...plantedBars({ symbol: "AAAUSDT", bars: 400, seed: 1, plantedSignal: 0.5 }),
      ...withFlatStretch(plantedBars({ symbol: "BBBUSDT", bars: 400, seed: 2, plantedSignal: 0, sigma: 0.01 })),
    ];
    py = await pythonFeatures(bars);
  }, 600_000);

  it("produce the same rows and the same values", () => {
    let compared = 0;
    let maxDiff = 0;
    for (const symbol of ["AAAUSDT", "BBBUSDT"]) {
      const series = bars.filter((b) => b.symbol === symbol);
      const pyRows = py.filter((r) => r.symbol === symbol);
      expect(pyRows.length).toBe(series.length - LOOKBACK);
      for (const row of pyRows) {
        const t = series.findIndex((b) => b.openTime === row.openTime);
        const ts = featuresAt(series, t)!;
        expect(Object.keys(row.values)).toEqual([...FEATURE_NAMES]);
        for (const name of FEATURE_NAMES) {
          const a = ts[name];
          const b = row.values[name];
          const diff = Math.abs(a - b) / Math.max(1, Math.abs(b));
          maxDiff = Math.max(maxDiff, diff);
          if (diff > 1e-9) expect.fail(`${symbol} t=${t} ${name}: TypeScript ${a}, Python ${b}`);
          compared++;
        }
      }
    }
    expect(compared).toBe(2 * (400 - LOOKBACK) * FEATURE_NAMES.length);
    console.log(`[parity] ${compared} values compared, max relative difference ${maxDiff.toExponential(2)}`);
  });

  it("flat stretches hit the guards identically", () => {
    const series = bars.filter((b) => b.symbol === "BBBUSDT");
    const f = featuresAt(series, 250)!;
    expect(f).toMatchObject({ ret_1: 0, rsi_14: 50, volume_z_20: 0, channel_pos_20: 0.5, ma_gap_20: 0, vol_15: 0 });
  });

  it("no row before LOOKBACK bars, and bad bars are named", () => {
    const series: OhlcvBar[] = bars.slice(0, LOOKBACK + 1);
    expect(featuresAt(series, LOOKBACK - 1)).toBeUndefined();
    expect(featuresAt(series, LOOKBACK)).toBeDefined();
    expect(barsProblem(series.slice(0, LOOKBACK))).toMatch(/needs 61 bars, has 60/);
    expect(barsProblem(series.map((b, i) => (i === 7 ? { ...b, close: Number.NaN } : b)))).toMatch(/bar 7 has close NaN/);
    expect(barsProblem(series.map((b, i) => (i === 9 ? { ...b, openTime: series[8].openTime } : b)))).toMatch(/strictly increasing time at index 9/);
    expect(barsProblem(series)).toBeUndefined();
  });
});
