/**
 * Backtesting benchmark: this engine (event-driven and vectorized) against backtrader,
 * backtesting.py, vectorbt and NautilusTrader's BacktestEngine, all in this process tree, on the
 * same generated bars, with the same long-only SMA(10)/SMA(30) crossover (one unit per entry, no
 * fees). Prints bars/s per engine by wall clock and by CPU time of the process (the machine is
 * shared: CPU time is what "on one core" means) and the ratio of ours to each.
 *
 *   npx tsx bench/backtest.ts                         # every scale, every anchor
 *   npx tsx bench/backtest.ts --no-anchors            # ours only
 *   npx tsx bench/backtest.ts --scales=1Mx1,1Mx50     # some scales (1Mx1, 1Mx50, 10Mx1, 10Mx50)
 *   npx tsx bench/backtest.ts --anchors=vectorbt,backtesting   # some anchors
 *   BENCH_ANCHOR_TIMEOUT_S=1800 npx tsx bench/backtest.ts     # bound on one anchor run (default 3 h)
 *   BENCH_OUT=results.jsonl npx tsx bench/backtest.ts          # also append each row as JSON as it lands
 *
 * Scales: 1M and 10M bars, as one symbol and as 50 symbols (50 x 20k, 50 x 200k); every engine runs
 * every scale (50 symbols = 50 columns of one vectorbt portfolio; 50 separate runs elsewhere). The
 * event-driven anchors process 5-130k bars/s (notes), so the full matrix takes hours; an anchor that
 * exceeds the timeout is reported as such, with the bars it was given.
 * Anchor venvs (two: nautilus needs pandas < 3, vectorbt pandas >= 3) come from PyPI once, cached.
 */
import { execFile } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { backtest, syntheticSeries, type BarSeries, type EngineMode } from "../services/src/backtest";
import { anchorsVenv, nautilusVenv } from "./backtest/venvs";

const run = promisify(execFile);
const FAST = 10;
const SLOW = 30;
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const ANCHORS = !process.argv.includes("--no-anchors");
const ANCHOR_NAMES = (arg("anchors") ?? "vectorbt,backtesting,backtrader,nautilus").split(",");
const ANCHOR_TIMEOUT_MS = Number(process.env.BENCH_ANCHOR_TIMEOUT_S ?? 10_800) * 1000;
const ALL_SCALES = [
  { total: 1_000_000, symbols: 1 },
  { total: 1_000_000, symbols: 50 },
  { total: 10_000_000, symbols: 1 },
  { total: 10_000_000, symbols: 50 },
];
const wantedScales = arg("scales")?.split(",");
const SCALES = ALL_SCALES.filter((s) => !wantedScales || wantedScales.includes(`${s.total / 1e6}Mx${s.symbols}`));

interface Row { engine: string; scale: string; bars: number; wall: number; cpu: number; trades: number }
const rows: Row[] = [];
const notRun: string[] = [];
function land(r: Row) {
  rows.push(r);
  console.error(`[bench] ${r.engine} ${r.scale}: ${(r.bars / r.cpu / 1e6).toFixed(3)}M bars/s (CPU), ${r.wall.toFixed(2)} s wall, ${r.trades} trades  (load ${loadavg()[0].toFixed(1)})`);
  if (process.env.BENCH_OUT) appendFileSync(process.env.BENCH_OUT, JSON.stringify({ ...r, load1: loadavg()[0], at: new Date().toISOString() }) + "\n");
}
const scaleName = (total: number, symbols: number) => `${total >= 1e6 ? `${total / 1e6}M` : `${total / 1e3}k`} x ${symbols}`;

function universe(total: number, symbols: number): BarSeries[] {
  return Array.from({ length: symbols }, (_, s) => syntheticSeries({ seed: 7, symbol: `S${s}`, bars: total / symbols }));
}

function ours(mode: EngineMode, series: BarSeries[]): { wall: number; cpu: number; trades: number } {
  const w = performance.now();
  const c = process.cpuUsage();
  let trades = 0;
  for (const bars of series)
    trades += backtest(bars, {
      strategy: "sma-crossover", parameters: { fast: FAST, slow: SLOW }, mode, initialCash: 1e12, quantity: 1, fillAt: "nextOpen",
      execution: { makerFeeBps: "0", takerFeeBps: "0", slippageBps: "0" },
    }).metrics.trades;
  const u = process.cpuUsage(c);
  return { wall: (performance.now() - w) / 1000, cpu: (u.user + u.system) / 1e6, trades };
}

async function anchor(engine: string, python: string, series: BarSeries[], dir: string): Promise<void> {
  const n = series[0].close.length;
  const cols = new Float64Array(6 * series.length * n);
  ["time", "open", "high", "low", "close", "volume"].forEach((k, j) =>
    series.forEach((s, i) => cols.set(s[k as "time"], (j * series.length + i) * n)));
  const file = join(dir, "bars.f64");
  writeFileSync(file, new Uint8Array(cols.buffer));
  try {
    const { stdout } = await run(python, [join(__dirname, "backtest", "anchors.py"), engine, file, String(series.length), String(n), String(FAST), String(SLOW)], {
      maxBuffer: 16 << 20, timeout: ANCHOR_TIMEOUT_MS, cwd: join(__dirname, "backtest"), env: { ...process.env, PYTHONPATH: join(__dirname, "backtest") },
    });
    const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as { wall: number; cpu: number; trades: number; bars: number };
    land({ engine, scale: scaleName(r.bars, series.length), bars: r.bars, wall: r.wall, cpu: r.cpu, trades: r.trades });
  } catch (e) {
    const err = e as Error & { killed?: boolean };
    const why = err.killed ? `timed out after ${ANCHOR_TIMEOUT_MS / 1000} s` : `failed: ${err.message.split("\n").slice(-3).join(" | ")}`;
    notRun.push(`${engine} ${scaleName(series.length * n, series.length)}: ${why}`);
    console.error(`[bench] ${engine} ${why}`);
  }
}

function record(engine: string, total: number, symbols: number, r: { wall: number; cpu: number; trades: number }) {
  land({ engine, scale: scaleName(total, symbols), bars: total, ...r });
}

async function main() {
  // Warm the JIT on a small series first (the Python side excludes numba's compile the same way).
  const warm = universe(200_000, 1);
  ours("event", warm);
  ours("vectorized", warm);
  const dir = mkdtempSync(join(tmpdir(), "bench-backtest-"));
  const venvs = ANCHORS ? await Promise.all([anchorsVenv(), nautilusVenv()]) : [];
  const py = (v: (typeof venvs)[number] | undefined) => (v && "python" in v ? v.python : undefined);
  try {
    for (const { total, symbols } of SCALES) {
      const series = universe(total, symbols);
      record("ours event-driven", total, symbols, ours("event", series));
      record("ours vectorized", total, symbols, ours("vectorized", series));
      if (!ANCHORS) continue;
      for (const engine of ANCHOR_NAMES) {
        const python = engine === "nautilus" ? py(venvs[1]) : py(venvs[0]);
        if (python) await anchor(engine, python, series, dir);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = (r: Row) => r.bars / r.cpu;
  const find = (engine: string, scale: string) => rows.find((r) => r.engine === engine && r.scale === scale);
  console.log(`\n| engine | bars x symbols | wall s | bars/s (wall) | bars/s (CPU) | trades | ours event-driven / it | ours vectorized / it |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    const ev = find("ours event-driven", r.scale);
    const vec = find("ours vectorized", r.scale);
    const ratio = (o?: Row) => (o ? `${(rate(o) / rate(r)).toFixed(1)}x` : "-");
    console.log(`| ${r.engine} | ${r.scale} | ${r.wall.toFixed(2)} | ${Math.round(r.bars / r.wall).toLocaleString("en")} | ${Math.round(rate(r)).toLocaleString("en")} | ${r.trades} | ${ratio(ev)} | ${ratio(vec)} |`);
  }
  for (const v of venvs) if ("skipped" in v) console.log(`anchors skipped: ${v.skipped}`);
  for (const n of notRun) console.log(`not measured: ${n}`);
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")} (${process.env.BENCH_OUT ? `per-row load in ${process.env.BENCH_OUT}` : "per-row load on stderr"})`);
}

void main();
