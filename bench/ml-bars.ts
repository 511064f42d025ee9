/**
 * ml-predictor's bar read per prediction request, on a private ClickHouse (the Debian 18.16 the
 * tests use): the last LOOKBACK + 1 bars of 3 symbols, one query per symbol in parallel (how it
 * was) versus BarStore.latestMany (one query, bounded to a recent window). Prints p50 / p90 of 30.
 *
 *   npx tsx bench/ml-bars.ts [barsPerSymbol=6000]
 */
import { startClickHouse } from "../tests/harness";
import { createClickHouse } from "../services/src/kit/datastores";
import { runClickHouseMigrations } from "../services/src/migrations";
import { candleRow } from "../services/src/services/data-bridge";
import { BarStore } from "../services/src/services/ml-predictor/bars";
import { LOOKBACK } from "../services/src/ml/features";
import { plantedBars } from "../tests/helpers/planted-bars";
import { percentile } from "./lib/stats";

const SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];

async function main() {
  const perSymbol = Number(process.argv[2] ?? 6000);
  const srv = await startClickHouse();
  const ch = createClickHouse({ ...srv.env } as never);
  try {
    await runClickHouseMigrations(ch as never);
    for (const s of SYMBOLS) {
      const rows = plantedBars({ symbol: s, bars: perSymbol, seed: s, plantedSignal: 0.5 }).map((b) =>
        candleRow({ symbol: s, interval: "1m", openTime: b.openTime, closeTime: b.openTime + 59_999, open: String(b.open), high: String(b.high), low: String(b.low), close: String(b.close), volume: String(b.volume) }, "bench"),
      );
      for (let i = 0; i < rows.length; i += 10_000) await ch.insert("market_candles", rows.slice(i, i + 10_000));
    }
    const bars = new BarStore(ch, "1m");
    const n = LOOKBACK + 1;
    const many = await bars.latestMany(SYMBOLS, n);
    for (const s of SYMBOLS) if (JSON.stringify(await bars.latest(s, n)) !== JSON.stringify(many.get(s))) throw new Error(`${s}: the two reads differ`);
    const time = async (name: string, f: () => Promise<unknown>, runs = 30) => {
      await f();
      const ts: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await f();
        ts.push(performance.now() - t);
      }
      console.log(`${name}: p50 ${percentile(ts, 50).toFixed(1)} ms, p90 ${percentile(ts, 90).toFixed(1)} ms`);
    };
    console.log(`${perSymbol} bars per symbol, ${SYMBOLS.length} symbols, last ${n} bars each`);
    await time("one query per symbol, in parallel", () => Promise.all(SYMBOLS.map((s) => bars.latest(s, n))));
    await time("latestMany (one bounded query)", () => bars.latestMany(SYMBOLS, n));
  } finally {
    await ch.close();
    await srv.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
