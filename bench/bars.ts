/**
 * Market data ingest benchmark (npx tsx bench/bars.ts [bars] [symbols] [postBatch] [posters] [objects|series]).
 * Starts private Redis, Kafka and ClickHouse (tests/harness), applies the migrations, runs data-bridge
 * in its own Node process (bench/lib/service-process.ts), posts `bars` synthetic 1m bars over
 * `symbols` symbols to POST /internal/bars in bodies of `postBatch` bars from `posters` concurrent
 * posters (bars as objects, `{"bars":[...]}`, or positional per symbol, `{"series":[...]}`), and waits until ClickHouse holds every one of them (distinct (symbol, timeframe,
 * open_time)). Prints bars/s accepted and bars/s in ClickHouse (from the first post to the last row
 * counted), and the CPU time per 1,000 bars of data-bridge, ClickHouse, Kafka and this driver
 * (utime+stime from /proc, each process with its descendants): wall clock is an upper bound on a
 * shared machine, CPU per bar is what the design costs.
 * BENCH_PROF=<dir> BENCH_PROF_SERVICES=data-bridge writes a --cpu-prof profile of data-bridge.
 */
import { loadavg } from "node:os";
import { startClickHouse, startKafka, startRedis } from "../tests/harness";
import { migrateClickHouseAndTopics } from "../tests/helpers/schemas";
import { createClickHouse } from "../services/src/kit/datastores";
import { SyntheticSource } from "../services/src/trading/marketdata/synthetic";
import type { Bar } from "../services/src/trading/types";
import { barsBody, type BarsFormat } from "./lib/bar-bodies";
import { startServiceProcess, stopServiceProcess, treeCpuSeconds, type ServiceProcess } from "./lib/service-process";

const BARS = Number(process.argv[2] ?? 200_000);
const SYMBOLS = Number(process.argv[3] ?? 1);
const POST_BATCH = Number(process.argv[4] ?? 5000);
const POSTERS = Number(process.argv[5] ?? 4);
const FORMAT_ARG = process.argv[6] ?? "objects";
if (FORMAT_ARG !== "objects" && FORMAT_ARG !== "series") throw new Error(`body format must be objects or series, not ${FORMAT_ARG}`);
const FORMAT: BarsFormat = FORMAT_ARG;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");
/** CPU time of `pid` and all its descendants, in ms (bench/lib/service-process.ts). */
const cpuMs = (pid: number | undefined): number => (pid === undefined ? 0 : treeCpuSeconds(pid) * 1000);
const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main() {
  const t0 = Date.now();
  const [redis, kafka, clickhouse] = await Promise.all([startRedis(), startKafka({ readyTimeoutMs: 600_000 }), startClickHouse()]);
  console.log(`servers up in ${Date.now() - t0} ms; load average ${load()}`);
  let bridge: ServiceProcess | undefined;
  try {
    const env: Record<string, string> = { ...redis.env, ...kafka.env, ...clickhouse.env, LOG_LEVEL: "error", MARKET_SUBSCRIBE: "false", ...benchEnv() };
    const ch = createClickHouse({ CLICKHOUSE_URL: env.CLICKHOUSE_URL, CLICKHOUSE_USER: env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE });
    await migrateClickHouseAndTopics(env);
    bridge = await startServiceProcess("data-bridge", env);

    // Bars: `SYMBOLS` series interleaved, so every post carries every symbol (as a multi-symbol feed would).
    const origin = Date.UTC(2020, 0, 1);
    const perSymbol = Math.ceil(BARS / SYMBOLS);
    const series: Bar[][] = [];
    for (let s = 0; s < SYMBOLS; s++) series.push(await new SyntheticSource({ seed: "bench-bars", origin }).history(`BENCH${s}USDT`, "1m", { limit: perSymbol }));
    const bars: Bar[] = [];
    for (let i = 0; i < perSymbol && bars.length < BARS; i++) for (let s = 0; s < SYMBOLS && bars.length < BARS; s++) bars.push(series[s][i]);
    const bodies: string[] = [];
    for (let i = 0; i < bars.length; i += POST_BATCH) bodies.push(barsBody(bars.slice(i, i + POST_BATCH), FORMAT));

    // Warm-up (JIT, connections, consumer assignment): one post of other bars, waited into ClickHouse.
    const warm = await new SyntheticSource({ seed: "warm", origin }).history("WARMUSDT", "1m", { limit: 1000 });
    await post(bridge.url, JSON.stringify({ bars: warm }));
    await waitRows(ch, "symbol = 'WARMUSDT'", warm.length);

    const cpu0 = { bridge: cpuMs(bridge.pid), clickhouse: cpuMs(clickhouse.pid), kafka: cpuMs(kafka.pid), driver: selfCpuMs() };
    console.log(`load average before the run: ${load()}`);
    const b0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: POSTERS }, async () => {
        while (next < bodies.length) await post(bridge!.url, bodies[next++]);
      }),
    );
    const posted = performance.now();
    await waitRows(ch, "symbol LIKE 'BENCH%'", BARS);
    const done = performance.now();
    const cpu1 = { bridge: cpuMs(bridge.pid), clickhouse: cpuMs(clickhouse.pid), kafka: cpuMs(kafka.pid), driver: selfCpuMs() };
    const [{ rows, distinct }] = await ch.query<{ rows: string; distinct: string }>(
      "SELECT count() AS rows, uniqExact(symbol, timeframe, open_time) AS distinct FROM market_candles WHERE symbol LIKE 'BENCH%'",
    );
    const per1k = (k: keyof typeof cpu0) => (((cpu1[k] - cpu0[k]) / BARS) * 1000).toFixed(1);
    console.log(`bars: ${BARS} bars, ${SYMBOLS} symbol(s), POST /internal/bars bodies of ${POST_BATCH} bars as ${FORMAT} (${(bodies.reduce((n, b) => n + b.length, 0) / BARS).toFixed(0)} bytes a bar) from ${POSTERS} posters, data-bridge env ${JSON.stringify(benchEnv())}`);
    console.log(`  accepted by data-bridge: ${(BARS / ((posted - b0) / 1000)).toFixed(0)} bars/s (${((posted - b0) / 1000).toFixed(2)} s)`);
    console.log(`  in ClickHouse: ${(BARS / ((done - b0) / 1000)).toFixed(0)} bars/s (${((done - b0) / 1000).toFixed(2)} s wall clock); rows ${rows}, distinct bars ${distinct}`);
    console.log(`  CPU ms per 1k bars: data-bridge ${per1k("bridge")}, ClickHouse ${per1k("clickhouse")}, Kafka ${per1k("kafka")}, bench driver ${per1k("driver")}`);
    console.log(`load average at the end: ${load()}`);
    if (Number(distinct) !== BARS) throw new Error(`expected ${BARS} distinct bars in ClickHouse, found ${distinct}`);
    await ch.close();
  } finally {
    if (bridge) await stopServiceProcess(bridge).catch(() => undefined);
    await Promise.allSettled([redis.stop(), kafka.stop(), clickhouse.stop()]);
  }
}

/** data-bridge settings under test: BENCH_<NAME>=value passes NAME=value (e.g. BENCH_CH_MAX_BATCH_BYTES=16777216). */
function benchEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).flatMap(([k, v]) => (k.startsWith("BENCH_") && k !== "BENCH_PROF" && k !== "BENCH_PROF_SERVICES" && v !== undefined ? [[k.slice(6), v]] : [])));
}

async function post(url: string, body: string): Promise<void> {
  const r = await fetch(`${url}/internal/bars`, { method: "POST", headers: { "content-type": "application/json" }, body });
  if (r.status !== 200) throw new Error(`POST /internal/bars: ${r.status} ${await r.text()}`);
}

async function waitRows(ch: ReturnType<typeof createClickHouse>, where: string, n: number): Promise<void> {
  for (;;) {
    const [{ c }] = await ch.query<{ c: string }>(`SELECT count() AS c FROM market_candles WHERE ${where}`);
    if (Number(c) >= n) return;
    await sleep(20);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
