/**
 * Trading core benchmark, open loop (npx tsx bench/trading.ts [latencyRate] [saturationRate] [seconds] [bars]).
 * Starts private PostgreSQL, Redis, Kafka and ClickHouse (tests/harness), applies the migrations,
 * runs api-gateway, order-management, trading-engine, portfolio-manager and data-bridge each in its
 * own Node process (as in production: bench/lib/service-process.ts), then measures:
 *   1. submit-to-fill latency at a fixed offered rate (default 200 orders/s): market orders are sent
 *      on a fixed schedule whatever the answers (open loop), through the gateway (JWT) -> risk check +
 *      outbox -> Kafka -> engine fill -> Kafka; latency runs from each order's INTENDED send time to
 *      its fill event on trading.executions, so a stall delays every order behind it (no coordinated
 *      omission);
 *   2. end-to-end orders/s at saturation: the same at an offered rate above capacity (default 1000/s);
 *      the figure is orders filled per second from the first intended send to the last fill;
 *   3. bars/s ingested by data-bridge (POST /internal/bars) until they are all in ClickHouse: `bars`
 *      (default 1,000,000) posted as series (the compact bulk form), then a fifth as many as bar
 *      objects; 0 skips it. Bars/s is from the first post to the last row counted in ClickHouse.
 * The warm-up runs at the latency rate for BENCH_WARM_SECONDS (20), then on in 5 s rounds while the
 * broker's JIT compiler threads burnt more than 20 ms of CPU a second in either of the last two rounds
 * (at most BENCH_WARM_MAX_SECONDS in all, 120): a freshly started JVM broker compiles for about a minute here,
 * 200-300 ms of CPU a second on the cores the path runs on, which production's long-running broker
 * (Redpanda, C++) never pays. BENCH_DUMP=<file> writes each order of the latency run's steps.
 * BENCH_KAFKA_HEAP: the broker's JVM heap (default -Xms1g -Xmx1g: KAFKA_HEAP below); each order run
 * prints the broker's GC pauses in it (bench/lib/broker-gc.ts).
 * BENCH_VIA=direct sends the orders straight to order-management (identity headers as the gateway
 * sets them) instead of through the gateway.
 * Orders come from USERS traders in turn (the risk check serializes each user's orders by design).
 * Each order phase also prints the CPU time per filled order of every service process (from /proc:
 * the wall clock is only an upper bound on a shared machine). At most MAX_IN_FLIGHT submissions are
 * open at once (a client connection pool: an order waiting for one is still timed from its intended
 * send), and a phase waits at most FILL_WAIT_MS after its last answer for fills: an order unfilled
 * by then counts as infinitely late (so the bench always ends, and says how many).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { kafkajs, Redis, startClickHouse, startKafka, startPostgres, startRedis } from "../tests/harness";
import { jwtKey, signAccessToken } from "../services/src/kit";
import { createClickHouse } from "../services/src/kit/datastores";
import { SyntheticSource } from "../services/src/trading/marketdata/synthetic";
import { userStateKey } from "../services/src/services/user-management/user-state";
import { migrateAll } from "../tests/helpers/schemas";
import { barsBody, type BarsFormat } from "./lib/bar-bodies";
import { jsonPoster } from "./lib/json-poster";
import { printOrderPathSteps } from "./lib/order-path-steps";
import { cpuSeconds, jitCompilerCpuSeconds, startServiceProcess, stopServiceProcess, treeCpuSeconds, type ServiceProcess } from "./lib/service-process";
import { percentile } from "./lib/stats";
import { brokerGcLog, describePauses } from "./lib/broker-gc";

const LATENCY_RATE = Number(process.argv[2] ?? 200);
const SATURATION_RATE = Number(process.argv[3] ?? 1000);
const SECONDS = Number(process.argv[4] ?? 10);
const BARS = Number(process.argv[5] ?? 1_000_000);
const USERS = 32;
const WARM_SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 20);
/** The warm-up goes on (in 5 s rounds, up to this long in all) while the broker's JIT compiler threads still burn more than JIT_QUIET_MS_PER_S. */
const WARM_MAX_SECONDS = Number(process.env.BENCH_WARM_MAX_SECONDS ?? 120);
const JIT_QUIET_MS_PER_S = 20;
const DIRECT = process.env.BENCH_VIA === "direct";
/** BENCH_PG_STATEMENTS=1: PostgreSQL's statements of the latency run by total time (pg_stat_statements). */
const PG_STATEMENTS = process.env.BENCH_PG_STATEMENTS === "1";
/**
 * The stand-in broker's JVM heap (BENCH_KAFKA_HEAP). The tests' broker has 384 MB (tests/harness/kafka.ts):
 * after the warm-up its live set (about 170 MB here) stays above G1's initiating occupancy, so it ran
 * marking cycles back to back and stopped for 5-30 ms (young, remark) every few seconds, both cores'
 * GC workers busy: 35-52 pauses, 397-450 ms in all per bench run, and a submit-to-fill p99 of 69-73 ms
 * at 200/s against 47-54 ms with 1 GB (12 pauses) in an interleaved A/B (README, "The order path").
 * Kafka's own guidance sizes a production broker's heap at several GB; Redpanda has no GC at all.
 */
const KAFKA_HEAP = process.env.BENCH_KAFKA_HEAP ?? "-Xms1g -Xmx1g";
const MAX_IN_FLIGHT = 256;
const FILL_WAIT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A latency figure; an order that never filled is infinitely late. */
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : "never (unfilled)");
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");

async function main() {
  const t0 = Date.now();
  const gc = brokerGcLog();
  process.env.KAFKA_OPTS = gc.kafkaOpts; // the harness passes this process's environment to the broker
  const [postgres, redis, kafka, clickhouse] = await Promise.all([startPostgres(PG_STATEMENTS ? { settings: ["shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all", "pg_stat_statements.track_planning=on"] } : {}), startRedis(), startKafka({ readyTimeoutMs: 600_000, heapOpts: KAFKA_HEAP }), startClickHouse()]);
  console.log(`servers up in ${Date.now() - t0} ms; load average ${load()}`);
  const services: ServiceProcess[] = [];
  try {
    const secret = randomBytes(64).toString("hex");
    const env: Record<string, string> = {
      ...postgres.env, ...redis.env, ...kafka.env, ...clickhouse.env,
      LOG_LEVEL: "error",
      JWT_SECRET: secret,
      POSTGRES_POOL_MAX: "40",
      RATE_LIMIT_MAX_REQUESTS: "1000000", // the gateway's most: 16,000 a second in its default window, far above the order path
      RISK_MAX_ORDERS_PER_WINDOW: "100000",
      RISK_MAX_POSITION: "1000000",
      // Its orders are 0.01 at a synthetic price near 100: a notional near 1, the default minimum, under
      // it whenever the price is under 100; the floor goes below them, as the rate limit goes above.
      RISK_MIN_ORDER_NOTIONAL: "0.0001",
      // 32 users' orders: at saturation more of a user's market orders can wait for the engine (open) than the default cap.
      RISK_MAX_OPEN_ORDERS: "100000",
      MARKET_SUBSCRIBE: "false",
      KAFKA_SESSION_TIMEOUT_MS: "6000",
      KAFKA_HEARTBEAT_MS: "2000", // every heartbeat costs the broker CPU too (500 ms: about 10 ms/s more for five consumers)
    };
    const pool = await migrateAll(env);
    const ch = createClickHouse({ CLICKHOUSE_URL: env.CLICKHOUSE_URL, CLICKHOUSE_USER: env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE });
    const k = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });

    const urls: Record<string, string> = {};
    for (const name of ["order-management", "trading-engine", "portfolio-manager", "data-bridge"]) {
      const s = await startServiceProcess(name, env);
      services.push(s);
      urls[`SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`] = s.url;
    }
    const g = await startServiceProcess("api-gateway", { ...env, ...urls });
    services.push(g);
    const gw = g.url;
    let bridge = urls.SERVICE_DATA_BRIDGE_URL;
    const userIds = Array.from({ length: USERS }, () => randomUUID());
    // The gateway checks each user's state (user-management is not run here): seed it in Dragonfly.
    const rc = new Redis(env.DRAGONFLY_URL);
    for (const id of userIds) await rc.set(userStateKey(id), JSON.stringify({ status: "active", role: "trader", epoch: 0 }), "EX", 3600);
    rc.disconnect();
    const tokens = await Promise.all(userIds.map((userId) => signAccessToken(jwtKey(secret), { userId, role: "trader" }, 3600)));

    // Fill-event listener: the first fill of each order (when seen, and its Kafka CreateTime).
    const fillAt = new Map<string, number>();
    const fillKafkaAt = new Map<string, number>();
    // A long poll, as the services' consumers: answered as soon as a fill arrives (a short wait only
    // adds the broker's CPU for empty answers, on the cores the path runs on).
    const consumer = k.consumer({ groupId: `bench-${randomUUID()}`, maxWaitTimeInMs: 1000 });
    await consumer.connect();
    await consumer.subscribe({ topic: "trading.executions", fromBeginning: true });
    await consumer.run({
      autoCommit: false, // a fresh group each run: nothing to resume, so no OffsetCommit per batch
      eachBatch: async ({ batch }) => {
        const at = performance.now();
        for (const message of batch.messages) {
          const m = JSON.parse(message.value!.toString());
          if (m.type === "fill" && !fillAt.has(m.fill.orderId)) {
            fillAt.set(m.fill.orderId, at);
            fillKafkaAt.set(m.fill.orderId, Number(message.timestamp));
          }
        }
      },
    });

    // One bar so market orders have a price; wait for the engine to see it.
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const seedBars = await new SyntheticSource({ seed: "bench", startPrices: { BTCUSDT: "100" }, origin: minute - 5 * 60_000 }).history("BTCUSDT", "1m", { limit: 5 });
    await fetch(`${bridge}/internal/bars`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ bars: seedBars }) });
    for (;;) {
      const r = await (await fetch(`${urls.SERVICE_TRADING_ENGINE_URL}/last/BTCUSDT`)).json();
      if (r.bar?.openTime === seedBars[4].openTime) break;
      await sleep(100);
    }

    const poster = jsonPoster(MAX_IN_FLIGHT);
    let seq = 0;
    const failures = new Map<string, number>();
    let inFlight = 0;
    const waiting: (() => void)[] = [];
    const submitOne = async (intended: number) => {
      if (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => waiting.push(r));
      inFlight++;
      try {
        return await submitAt(intended);
      } catch (err) {
        const k = `network ${(err as Error).message}`;
        failures.set(k, (failures.get(k) ?? 0) + 1);
        return undefined;
      } finally {
        inFlight--;
        waiting.shift()?.();
      }
    };
    const submitAt = async (intended: number) => {
      const i = seq++;
      // BENCH_VIA=direct: straight to order-management with the identity headers the gateway sets
      // (the order path without the gateway's share).
      const auth: Record<string, string> = DIRECT ? { "x-user-id": userIds[i % USERS], "x-user-role": "trader", "x-auth-method": "jwt" } : { authorization: `Bearer ${tokens[i % USERS]}` };
      const { status, body } = await poster.post(
        DIRECT ? `${urls.SERVICE_ORDER_MANAGEMENT_URL}/` : `${gw}/api/orders`,
        { ...auth, "content-type": "application/json", "idempotency-key": `bench-${i}` },
        JSON.stringify({ symbol: "BTCUSDT", side: Math.floor(i / USERS) % 2 ? "sell" : "buy", type: "market", quantity: "0.01" }),
        30_000,
      );
      if (status !== 201 || body.status !== "accepted") {
        // Reported, not fatal: under an open loop a failed order is a result (counted per status and code).
        const why = `${status} ${body.error?.code ?? body.rejectReason ?? ""}`;
        failures.set(why, (failures.get(why) ?? 0) + 1);
        return undefined;
      }
      return { orderId: body.orderId as string, intended, acked: performance.now() };
    };
    /**
     * Offers `rate` orders/s for `seconds`, on schedule whatever the answers; resolves when all are
     * filled or FILL_WAIT_MS after the last answer. Throughputs run from the first intended send.
     */
    const openLoop = async (rate: number, seconds: number) => {
      const n = Math.round(rate * seconds);
      const sent: Promise<{ orderId: string; intended: number; acked: number } | undefined>[] = [];
      failures.clear();
      const cpu0 = services.map((p) => cpuSeconds(p.pid));
      const stores = Object.entries({ postgres, kafka, redis }).filter(([, s]) => s.pid !== undefined).map(([name, s]) => ({ name, pid: s.pid! }));
      const storeCpu0 = stores.map((s) => treeCpuSeconds(s.pid));
      const selfCpu0 = process.cpuUsage();
      const start = performance.now() + 20;
      const due = () => start + (sent.length * 1000) / rate;
      while (sent.length < n) {
        while (sent.length < n && due() <= performance.now()) sent.push(submitOne(due()));
        // Wake for the next send, not every millisecond: at 200/s a 1 ms loop was 1,000 wake-ups a
        // second of the load generator's own CPU, on the cores the measured path runs on. A send the
        // timer wakes late for is still timed from its intended send time.
        if (sent.length < n) await sleep(Math.max(1, Math.floor(due() - performance.now())));
      }
      const results = (await Promise.all(sent)).filter((r) => r !== undefined);
      console.log(`  non-201 answers and errors: ${failures.size ? [...failures].map(([k, v]) => `${v} x ${k}`).join(", ") : "none"}`);
      const deadline = performance.now() + FILL_WAIT_MS;
      while (results.some((r) => !fillAt.has(r.orderId)) && performance.now() < deadline) await sleep(2);
      const filled = results.filter((r) => fillAt.has(r.orderId));
      const perOrder = (seconds: number) => ((seconds * 1000) / Math.max(1, filled.length)).toFixed(2);
      const self = process.cpuUsage(selfCpu0);
      const platform = [
        ...services.map((p, i) => ({ name: p.name, seconds: cpuSeconds(p.pid) - cpu0[i] })),
        ...stores.map((st, i) => ({ name: st.name, seconds: treeCpuSeconds(st.pid) - storeCpu0[i] })),
      ];
      const generator = (self.user + self.system) / 1e6;
      const platformSeconds = platform.reduce((sum, p) => sum + p.seconds, 0);
      // The sums too: the platform's own (what the design costs) and with the load generator, which in
      // production runs elsewhere but here takes the same two cores.
      const cpuMsPerOrder = [...platform.map((p) => `${p.name} ${perOrder(p.seconds)}`), `load generator ${perOrder(generator)}`].join(", ") +
        `; in all ${perOrder(platformSeconds + generator)}, the platform's ${perOrder(platformSeconds)}`;
      const lat = results.map((r) => (fillAt.get(r.orderId) ?? Infinity) - r.intended);
      const ack = results.map((r) => r.acked - r.intended);
      const lastAck = Math.max(...results.map((r) => r.acked));
      const lastFill = Math.max(...filled.map((r) => fillAt.get(r.orderId)!));
      return {
        n, accepted: results.length, filled: filled.length, lat, ack, cpuMsPerOrder, results,
        acceptedPerSecond: results.length / ((lastAck - start) / 1000),
        throughput: filled.length / ((lastFill - start) / 1000),
      };
    };
    type Phase = Awaited<ReturnType<typeof openLoop>>;
    const report = (p: Phase) => {
      console.log(`  ${p.n} offered, ${p.accepted} accepted (${p.acceptedPerSecond.toFixed(1)}/s), ${p.filled} filled (${p.throughput.toFixed(1)} orders/s end to end)`);
      console.log(`  submit (HTTP 201) from intended send: p50 ${ms(percentile(p.ack, 50))}, p99 ${ms(percentile(p.ack, 99))}`);
      console.log(`  submit-to-fill from intended send: p50 ${ms(percentile(p.lat, 50))}, p99 ${ms(percentile(p.lat, 99))}, max ${ms(Math.max(...p.lat))}`);
      console.log(`  CPU ms per filled order: ${p.cpuMsPerOrder}`);
    };

    // JIT, pools, consumer assignment, and the connections the latency run will use (opened here at
    // its rate, not during it). BENCH_WARM_SECONDS (default 20): a fresh broker's JIT compiler threads
    // still took 130-220 ms of CPU a second 2-30 s after its start (per thread, /proc/<pid>/task), up to a
    // millisecond of CPU per order at 200 orders/s; a long-running broker compiled all that long ago.
    const jit = () => (kafka.pid === undefined ? 0 : jitCompilerCpuSeconds(kafka.pid));
    let warmed = 0;
    // Two quiet rounds in a row: C2 compiles in spurts (a round at 10-40 ms/s was followed by one at 60-80).
    let quietRounds = 0;
    while (warmed < WARM_SECONDS || (quietRounds < 2 && warmed < WARM_MAX_SECONDS)) {
      const round = warmed < WARM_SECONDS ? WARM_SECONDS : 5;
      const [jit0, t] = [jit(), performance.now()];
      // The first 5 s round after the fixed warm-up runs at the saturation rate: five times the calls
      // a second bring the broker's hot methods to the JIT's thresholds sooner.
      const warm = await openLoop(warmed === WARM_SECONDS ? SATURATION_RATE : LATENCY_RATE, round);
      const jitRate = ((jit() - jit0) * 1000) / ((performance.now() - t) / 1000);
      quietRounds = jitRate <= JIT_QUIET_MS_PER_S ? quietRounds + 1 : 0;
      warmed += round;
      console.log(`warm-up: ${warm.n} orders, submit-to-fill p50 ${ms(percentile(warm.lat, 50))}; the broker's JIT compiler ${jitRate.toFixed(0)} ms of CPU a second`);
    }

    // What the processes cost with nothing to do (consumers polling, heartbeats, timers): at a
    // moderate rate this fixed cost is a large share of the CPU per order.
    const idleStores = Object.entries({ postgres, kafka, redis }).filter(([, st]) => st.pid !== undefined).map(([name, st]) => ({ name, pid: st.pid! }));
    const idle0 = [...services.map((p) => cpuSeconds(p.pid)), ...idleStores.map((st) => treeCpuSeconds(st.pid))];
    const idleSelf0 = process.cpuUsage();
    await sleep(3000);
    const idle1 = [...services.map((p) => cpuSeconds(p.pid)), ...idleStores.map((st) => treeCpuSeconds(st.pid))];
    const idleSelf = process.cpuUsage(idleSelf0);
    const idleNames = [...services.map((p) => p.name), ...idleStores.map((st) => st.name)];
    console.log(`idle CPU ms per second (no orders, 3 s): ${idleNames.map((n, i) => `${n} ${(((idle1[i] - idle0[i]) * 1000) / 3).toFixed(0)}`).join(", ")}, load generator ${((idleSelf.user + idleSelf.system) / 3000 / 3).toFixed(0)}`);
    console.log(`load average before the latency run: ${load()}`);
    if (PG_STATEMENTS) await pool.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()");
    const jitBefore = jit();
    const latencyFrom = Date.now();
    const l = await openLoop(LATENCY_RATE, SECONDS);
    const jitDuring = jit() - jitBefore;
    const gcDuring = gc.pauses(latencyFrom, Date.now());
    if (PG_STATEMENTS) {
      const { rows } = await pool.query<{ calls: string; total: number; plan: number; mean: number; rows: string; query: string }>(
        "SELECT calls, total_exec_time AS total, total_plan_time AS plan, mean_exec_time AS mean, rows, query FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 15",
      );
      const all = await pool.query<{ exec: number; plan: number; calls: string }>("SELECT sum(total_exec_time) AS exec, sum(total_plan_time) AS plan, sum(calls) AS calls FROM pg_stat_statements");
      const t = all.rows[0];
      console.log(`PostgreSQL statements of the latency run: ${t.calls} calls, ${Number(t.exec).toFixed(0)} ms executing, ${Number(t.plan).toFixed(0)} ms planning; the top ones by total time (ms executing / ms planning / calls / ms mean execution / rows):`);
      for (const r of rows) console.log(`  ${r.total.toFixed(0).padStart(7)} ${r.plan.toFixed(0).padStart(6)} ${String(r.calls).padStart(6)} ${r.mean.toFixed(3).padStart(8)} ${String(r.rows).padStart(7)}  ${r.query.replace(/\s+/g, " ").slice(0, 160)}`);
      const idx = await pool.query<{ name: string; scans: string; read: string; fetched: string }>(
        "SELECT indexrelname AS name, idx_scan AS scans, idx_tup_read AS read, idx_tup_fetch AS fetched FROM pg_stat_user_indexes WHERE idx_scan > 0 ORDER BY idx_tup_read DESC LIMIT 8",
      );
      console.log(`  index entries read since the start (scans / entries read / rows fetched): ${idx.rows.map((r) => `${r.name} ${r.scans}/${r.read}/${r.fetched}`).join(", ")}`);
      const tables = await pool.query<{ name: string; live: string; dead: string; vacuums: string }>(
        "SELECT relname AS name, n_live_tup AS live, n_dead_tup AS dead, autovacuum_count AS vacuums FROM pg_stat_user_tables WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC LIMIT 8",
      );
      console.log(`  dead rows (live / dead / autovacuums): ${tables.rows.map((r) => `${r.name} ${r.live}/${r.dead}/${r.vacuums}`).join(", ")}`);
    }
    console.log(`orders at ${LATENCY_RATE}/s offered for ${SECONDS} s (open loop, ${USERS} users, ${DIRECT ? "" : "gateway -> "}order-management -> Kafka -> trading-engine -> Kafka):`);
    report(l);
    console.log(`  the broker's JIT compiler during the run: ${((jitDuring * 1000) / Math.max(1, l.filled)).toFixed(2)} ms of CPU per filled order (in kafka's figure)`);
    console.log(`  the broker's GC during the run (heap ${KAFKA_HEAP}): ${describePauses(gcDuring)}`);
    const epoch = (t: number) => performance.timeOrigin + t;
    await printOrderPathSteps(pool, k, l.results.map((r) => ({
      orderId: r.orderId, intended: epoch(r.intended), acked: epoch(r.acked),
      fillSeen: fillAt.has(r.orderId) ? epoch(fillAt.get(r.orderId)!) : undefined, fillKafka: fillKafkaAt.get(r.orderId),
    })));

    console.log(`load average before the saturation run: ${load()}`);
    const saturationFrom = Date.now();
    const s = await openLoop(SATURATION_RATE, SECONDS);
    console.log(`orders at ${SATURATION_RATE}/s offered for ${SECONDS} s (saturation):`);
    report(s);
    console.log(`  the broker's GC during the run: ${describePauses(gc.pauses(saturationFrom, Date.now()))}`);
    await consumer.disconnect();
    poster.close();

    // Bars into ClickHouse through data-bridge (4 concurrent posters of 5,000-bar bodies): BARS in the
    // compact bulk form (series), then a fifth as many as bar objects, each run its own symbol.
    const barsRun = async (symbol: string, count: number, format: BarsFormat) => {
      const batch = 5000;
      const bars = await new SyntheticSource({ seed: "bench-bars", startPrices: { [symbol]: "100" }, origin: Date.UTC(2020, 0, 1) }).history(symbol, "1m", { limit: count });
      const bodies: string[] = [];
      for (let i = 0; i < bars.length; i += batch) bodies.push(barsBody(bars.slice(i, i + batch), format));
      // Rows of the symbol (the bench's own constant, not input); distinct open times, so no merge folds them.
      const rows = async () => Number((await ch.query<{ n: string }>(`SELECT count() AS n FROM market_candles WHERE symbol = '${symbol}'`)).at(0)!.n);
      const before = await rows();
      console.log(`load average before the bars run (${format}): ${load()}`);
      // Every process's CPU over the run: the engine reads every bar too (resting limits fill on bars).
      const procs = [
        ...services.map((p) => ({ name: p.name, cpu: () => cpuSeconds(p.pid) })),
        ...Object.entries({ postgres, kafka, redis, clickhouse }).flatMap(([name, st]) => (st.pid === undefined ? [] : [{ name, cpu: () => treeCpuSeconds(st.pid!) }])),
      ];
      const cpu0 = procs.map((p) => p.cpu());
      const b0 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < bodies.length) {
          const r = await fetch(`${bridge}/internal/bars`, { method: "POST", headers: { "content-type": "application/json" }, body: bodies[next++] });
          if (r.status !== 200) throw new Error(`bars: ${r.status} ${await r.text()}`);
        }
      }));
      const bPosted = performance.now();
      while ((await rows()) - before < count) await sleep(20);
      const bDone = performance.now();
      console.log(`bars: ${count} bars as ${format} in bodies of ${batch} via data-bridge (Kafka market.candles + Dragonfly last price; its writer copies the topic into ClickHouse in TabSeparated INSERTs; focused bench: bench/bars.ts)`);
      console.log(`  accepted by data-bridge: ${(count / ((bPosted - b0) / 1000)).toFixed(0)} bars/s; in ClickHouse: ${(count / ((bDone - b0) / 1000)).toFixed(0)} bars/s`);
      console.log(`  CPU ms per 1k bars: ${procs.map((p, i) => `${p.name} ${(((p.cpu() - cpu0[i]) * 1e6) / count).toFixed(1)}`).join(", ")}`);
    };
    if (BARS > 0) {
      // data-bridge runs the order phases at its production CH_FLUSH_MS (1 s): its candle writer long-polls
      // the idle market.candles topic, and at 100 ms those ten empty fetches a second were charged to every order
      // (the idle line, session 58: data-bridge 17 ms of CPU a second, the broker 30, against 7 and 20 at 1 s). The bars
      // phase gets a data-bridge that flushes every 100 ms, so the last bars' wait does not pad bars/s.
      const old = services.findIndex((p) => p.name === "data-bridge");
      await stopServiceProcess(services[old]);
      services[old] = await startServiceProcess("data-bridge", { ...env, CH_FLUSH_MS: "100" });
      bridge = services[old].url;
      await barsRun("BENCHUSDT", BARS, "series");
      await barsRun("BENCHOBJUSDT", Math.ceil(BARS / 5), "objects");
    }
    console.log(`load average at the end: ${load()}`);
    await ch.close();
    await pool.end();
  } finally {
    for (const s of services.reverse()) await stopServiceProcess(s).catch(() => undefined);
    await Promise.allSettled([postgres.stop(), redis.stop(), kafka.stop(), clickhouse.stop()]);
    gc.remove();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
