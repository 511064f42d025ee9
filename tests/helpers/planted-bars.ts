/**
 * Synthetic one-minute bars for the model tests and the benchmark, seeded and reproducible.
 *
 * - `plantedSignal: 0` is a pure log random walk (volume independent of prices): nothing to learn.
 * - `plantedSignal: s > 0` plants a learnable, non-linear rule: the next bar's expected log
 *   return is s * sigma * tanh(u) * sign(last return), where u is the normal draw behind the last
 *   bar's volume (volume = base * exp(0.5 u)). High-volume moves tend to continue, low-volume moves
 *   to reverse. No single naive rule sees it: persistence (momentum) is right half of the time; the
 *   model has to combine the volume z-score with the last return.
 */
import { Rng } from "../../services/src/trading/rng";
import type { OhlcvBar } from "../../services/src/ml/features";

export interface PlantedBar extends OhlcvBar {
  symbol: string;
  open: number;
}

export interface PlantedOptions {
  symbol?: string;
  bars: number;
  seed: string | number;
  plantedSignal: number;
  sigma?: number;
  origin?: number;
  intervalMs?: number;
  startPrice?: number;
}

const round = (x: number, d: number) => Number(x.toFixed(d));

export function plantedBars(o: PlantedOptions): PlantedBar[] {
  const rng = new Rng(`${o.seed}|${o.symbol ?? "SYN"}`);
  const sigma = o.sigma ?? 0.002;
  const step = o.intervalMs ?? 60_000;
  const origin = o.origin ?? Date.UTC(2025, 0, 1);
  const out: PlantedBar[] = [];
  let close = o.startPrice ?? 100;
  let lastReturn = 0;
  let lastVolumeDraw = 0;
  for (let i = 0; i < o.bars; i++) {
    const mu = o.plantedSignal * sigma * Math.tanh(lastVolumeDraw) * Math.sign(lastReturn);
    const r = mu + sigma * rng.normal();
    const open = close;
    const next = round(open * Math.exp(r), 6);
    const u = rng.normal();
    const hi = Math.max(open, next) * Math.exp(Math.abs(rng.normal()) * sigma * 0.5);
    const lo = Math.min(open, next) * Math.exp(-Math.abs(rng.normal()) * sigma * 0.5);
    out.push({
      symbol: o.symbol ?? "SYN",
      openTime: origin + i * step,
      open,
      high: round(Math.max(hi, open, next), 6),
      low: round(Math.min(lo, open, next), 6),
      close: next,
      volume: round(10 * Math.exp(0.5 * u), 4),
    });
    lastReturn = Math.log(next / open);
    lastVolumeDraw = u;
    close = next;
  }
  return out;
}

/** The training job's CSV (symbol,open_time,open,high,low,close,volume). */
export function barsCsv(bars: readonly PlantedBar[]): string {
  const lines = ["symbol,open_time,open,high,low,close,volume"];
  for (const b of bars) lines.push(`${b.symbol},${b.openTime},${b.open},${b.high},${b.low},${b.close},${b.volume}`);
  return lines.join("\n") + "\n";
}
