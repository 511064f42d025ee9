/**
 * Data access: a backtest's bars from ClickHouse (`market_candles`, what data-bridge records), a
 * replay file (CSV / JSON lines in BACKTEST_REPLAY_DIR) or the seeded generator. A job loads its
 * symbols' whole request period once per replica (an LRU bounded in bars: the jobs of a sweep share it) and
 * slices its own window, so every job of a run sees the same bars.
 */
import { readFile, stat } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { ParameterError, seriesFromBars, sliceSeries, syntheticSeries, allocateSeries, strategies, type BarSeries } from "../../backtest";
import type { ClickHouseKitClient } from "../../kit";
import { parseRecorded } from "../../trading/marketdata/replay";
import { SAMPLE_BTCUSDT_1M_CSV } from "../../trading/marketdata/sampleData";
import { intervalMs } from "../../trading/types";
import type { LoadBars } from "./executor";
import type { ScoreBars } from "./model";
import type { BacktestRequest } from "./schemas";

export interface BarSources {
  clickhouse?: ClickHouseKitClient;
  replayDir?: string;
  /** Attaches a model's per-bar score (strategies that need `model`, e.g. ml-model). */
  scoreBars?: ScoreBars;
  /** The version of the model scoreBars follows now (the promoted one): scored series are cached per version. */
  modelVersion?: () => Promise<string | undefined>;
}

/** Replay files every replica has: the trading core's recorded sample (the image carries no data files). */
// A Map, not an object: a client's file name `constructor` or `toString` is no built-in replay.
const BUILT_IN_REPLAYS = new Map<string, string>([["sample-btcusdt-1m.csv", SAMPLE_BTCUSDT_1M_CSV]]);

const REPLAY_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** A replay file's path inside the replay directory (a plain name: no separators, no leading dot). */
async function replayPath(dir: string | undefined, file: string): Promise<string> {
  if (!REPLAY_NAME.test(file)) throw new ParameterError("data.file", "must be a plain file name (letters, digits, . _ -)");
  if (!dir) throw new ParameterError("data.file", `no replay file ${JSON.stringify(file)} (built in: ${[...BUILT_IN_REPLAYS.keys()].join(", ")}; no replay directory is configured)`);
  const root = resolve(dir);
  const path = resolve(join(root, file));
  if (!path.startsWith(root + sep)) throw new ParameterError("data.file", "must name a file in the replay directory");
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new ParameterError("data.file", `no replay file ${JSON.stringify(file)}`);
  return path;
}

/** Checks a replay file exists (at submission, so a typo is a 400 and not a failed job). */
export async function checkReplay(dir: string | undefined, file: string): Promise<void> {
  if (!BUILT_IN_REPLAYS.has(file)) await replayPath(dir, file);
}

async function readReplay(dir: string | undefined, file: string): Promise<string> {
  return BUILT_IN_REPLAYS.get(file) ?? readFile(await replayPath(dir, file), "utf8");
}

async function fromClickHouse(ch: ClickHouseKitClient, symbol: string, interval: string, from: number, to: number): Promise<BarSeries> {
  const rows = await ch.query<{ t: number; open: number; high: number; low: number; close: number; volume: number }>(
    `SELECT toUInt32(open_time) AS t, open, high, low, close, volume FROM market_candles FINAL
     WHERE symbol = {symbol:String} AND timeframe = {timeframe:String}
       AND open_time >= toDateTime({from:UInt32}) AND open_time <= toDateTime({to:UInt32})
     ORDER BY open_time`,
    { symbol, timeframe: interval, from: Math.floor(from / 1000), to: Math.floor(to / 1000) },
  );
  const s = allocateSeries(symbol, intervalMs(interval), rows.length);
  rows.forEach((r, i) => {
    s.time[i] = Number(r.t) * 1000;
    s.open[i] = Number(r.open);
    s.high[i] = Number(r.high);
    s.low[i] = Number(r.low);
    s.close[i] = Number(r.close);
    s.volume[i] = Number(r.volume);
  });
  return s;
}

/**
 * The whole-period series of recent requests, bounded by bars (their sum), not by entries: a
 * replica is sized for one request of BACKTEST_MAX_BARS (about 48 bytes a bar in the columns), and
 * four cached series of 5M bars each held 960 MB after their jobs were done.
 */
export class BarCache {
  private readonly entries = new Map<string, { series: Promise<BarSeries>; bars: number }>();
  private held = 0;
  constructor(private readonly sources: BarSources, private readonly capacityBars: number) {}

  /** Bars the cache holds (each entry counted at the size its period allows). */
  get heldBars(): number {
    return this.held;
  }

  /** A loader for one request: whole period per symbol, cached, sliced per job. */
  loaderFor(req: BacktestRequest): LoadBars {
    const step = intervalMs(req.interval);
    const start = Date.parse(req.period.start);
    const bars = Math.floor((Date.parse(req.period.end) - start) / step);
    const end = start + (bars - 1) * step;
    return async (symbol, from, to) => sliceSeries(await this.full(req, symbol, start, end, bars), from, to);
  }

  private async full(req: BacktestRequest, symbol: string, start: number, end: number, bars: number): Promise<BarSeries> {
    const scored = strategies.get(req.strategy)?.needs?.includes("model") ?? false;
    // Scored series are cached apart, per model version: a sweep's jobs share the scores of the model
    // promoted when they run, and once another is promoted the next backtest follows it. Keyed by
    // "scored" alone, a replica kept answering the scores of the model it had first scored with (the
    // result naming that old version) for as long as the entry stayed in its cache.
    const model = scored ? ((await this.sources.modelVersion?.()) ?? null) : false;
    const key = JSON.stringify([req.data, symbol, req.interval, start, end, model]);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // refresh its place in the LRU order
      this.entries.set(key, hit);
      return hit.series;
    }
    const series = this.fetch(req, symbol, start, end, bars).then((s) => (scored ? this.score(s, req.data.source !== "synthetic") : s));
    const entry = { series, bars };
    series.catch(() => this.entries.get(key) === entry && this.drop(key));
    this.entries.set(key, entry);
    this.held += bars;
    // The newest entry stays even alone past the bound (its job needs it).
    for (const oldest of this.entries.keys()) {
      if (this.held <= this.capacityBars || oldest === key) break;
      this.drop(oldest);
    }
    return series;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.held -= e.bars;
  }

  private score(series: BarSeries, recorded: boolean): Promise<BarSeries> {
    if (!this.sources.scoreBars) throw new ParameterError("strategy", "this replica has no model registry to score bars with");
    return this.sources.scoreBars(series, recorded);
  }

  private async fetch(req: BacktestRequest, symbol: string, start: number, end: number, bars: number): Promise<BarSeries> {
    const data = req.data;
    if (data.source === "synthetic") return syntheticSeries({ seed: data.seed, symbol, bars, origin: start, intervalMs: intervalMs(req.interval) });
    if (data.source === "clickhouse") {
      if (!this.sources.clickhouse) throw new ParameterError("data.source", "this data source is not available in this deployment");
      return fromClickHouse(this.sources.clickhouse, symbol, req.interval, start, end);
    }
    const text = await readReplay(this.sources.replayDir, data.file);
    const recorded = parseRecorded(text, { symbol, interval: req.interval }).filter((b) => b.interval === req.interval && b.openTime >= start && b.openTime <= end);
    return seriesFromBars(symbol, recorded);
  }
}
