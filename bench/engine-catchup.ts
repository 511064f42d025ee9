/**
 * trading-engine catch-up benchmark (npx tsx bench/engine-catchup.ts [bars] [orders] [symbols] [poisonEvery]).
 * A broker holding history (closed bars of many symbols and accepted orders, as the shared test
 * broker holds every test file's), then a trading-engine process with a fresh consumer group, which
 * starts at the beginning of its topics: prints how long it takes to read that history (its group's
 * lag on trading.orders and market.candles down to 0), messages/s, the engine's CPU per 1,000
 * messages, and then the submit-to-fill time of one new order (a bar of its symbol, then the order).
 * With `poisonEvery` N, every Nth bar is one the engine refuses (low above high: the topic schema
 * passes it, the engine's own check does not), as a shared broker's history holds other tests' poison.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { kafkajs, pg, startKafka, startPostgres } from "../tests/harness";
import { ensureKafkaTopics, runPostgresMigrations } from "../services/src/migrations";
import { TOPICS } from "../services/src/trading/events";
import { cpuSeconds, startServiceProcess, stopServiceProcess, type ServiceProcess } from "./lib/service-process";

const BARS = Number(process.argv[2] ?? 200_000);
const ORDERS = Number(process.argv[3] ?? 5_000);
const SYMBOLS = Number(process.argv[4] ?? 50);
const POISON_EVERY = Number(process.argv[5] ?? 0);
const CATCHUP_LIMIT_S = 180;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");
const bar = (symbol: string, openTime: number, close: string) => ({ symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high: close, low: close, close, volume: "1000" });
const accepted = (symbol: string) => {
  const orderId = randomUUID();
  const order = { orderId, clientOrderId: orderId, userId: "bench-user", symbol, side: "buy", type: "market", quantity: "0.01", timeInForce: "GTC", status: "accepted", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: null, rejectMessage: null, lastPrice: "100", createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() };
  return { key: orderId, value: JSON.stringify({ eventId: `${orderId}:accepted`, type: "order.accepted", order, ts: Date.now() }) };
};

async function main() {
  const [postgres, kafka] = await Promise.all([startPostgres(), startKafka({ readyTimeoutMs: 600_000 })]);
  let engine: ServiceProcess | undefined;
  try {
    const env: Record<string, string> = { ...postgres.env, ...kafka.env, LOG_LEVEL: "error", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500" };
    const pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
    await runPostgresMigrations(pool);
    const k = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const admin = k.admin();
    await admin.connect();
    await ensureKafkaTopics(admin);
    const producer = k.producer();
    await producer.connect();
    // The history: bars in time order per symbol, the orders spread through it.
    const symbols = Array.from({ length: SYMBOLS }, (_, i) => `HIST${i}USDT`);
    const t0 = Date.UTC(2020, 0, 1);
    const perOrder = Math.max(1, Math.floor(BARS / Math.max(1, ORDERS)));
    let bars: { key: string; value: string }[] = [];
    let orders: { key: string; value: string }[] = [];
    const flush = async () => {
      if (bars.length) await producer.send({ topic: TOPICS.candles, messages: bars });
      if (orders.length) await producer.send({ topic: TOPICS.orders, messages: orders });
      bars = [];
      orders = [];
    };
    for (let i = 0; i < BARS; i++) {
      const s = symbols[i % SYMBOLS];
      const b = bar(s, t0 + Math.floor(i / SYMBOLS) * 60_000, "100");
      if (POISON_EVERY && i % POISON_EVERY === POISON_EVERY - 1) b.low = "101";
      bars.push({ key: s, value: JSON.stringify(b) });
      if (i % perOrder === 0 && i / perOrder < ORDERS) orders.push(accepted(s));
      if (bars.length >= 5000) await flush();
    }
    await flush();
    console.log(`history: ${BARS} bars of ${SYMBOLS} symbols${POISON_EVERY ? ` (every ${POISON_EVERY}th refused by the engine)` : ""}, ${ORDERS} accepted orders; load average ${load()}`);

    const group = `te-catchup-${randomUUID()}`;
    engine = await startServiceProcess("trading-engine", { ...env, TE_CONSUMER_GROUP: group });
    const cpu0 = cpuSeconds(engine.pid);
    const start = performance.now();
    const lag = async () => {
      let total = 0;
      for (const topic of [TOPICS.orders, TOPICS.candles]) {
        const ends = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        for (const e of ends) {
          const c = Number(committed.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
          total += Number(e.offset) - Math.max(0, c);
        }
      }
      return total;
    };
    // Bounded (the bench must end): after CATCHUP_LIMIT_S, what is left is reported instead.
    let left = await lag();
    while (left > 0 && performance.now() - start < CATCHUP_LIMIT_S * 1000) {
      await sleep(200);
      left = await lag();
    }
    const elapsed = (performance.now() - start) / 1000;
    const cpu = cpuSeconds(engine.pid) - cpu0;
    const read = BARS + ORDERS - left;
    const rate = `${(read / elapsed).toFixed(0)} messages/s; engine CPU ${((cpu * 1000) / Math.max(1, read / 1000)).toFixed(1)} ms per 1,000 messages`;
    if (left > 0) {
      console.log(`NOT caught up after ${elapsed.toFixed(0)} s: ${read} of ${BARS + ORDERS} messages read, ${rate}`);
      return;
    }
    console.log(`caught up in ${elapsed.toFixed(1)} s: ${rate} (offsets are committed once a second: up to 1 s of the time is the commit)`);

    // A new order after the history: a bar of its symbol, then the order; time to its fill row.
    const symbol = "FRESHUSDT";
    await producer.send({ topic: TOPICS.candles, messages: [{ key: symbol, value: JSON.stringify(bar(symbol, Date.UTC(2026, 0, 1), "100")) }] });
    for (;;) {
      const r = await (await fetch(`${engine.url}/last/${symbol}`)).json();
      if (r.bar) break;
      await sleep(20);
    }
    const o = accepted(symbol);
    const s0 = performance.now();
    await producer.send({ topic: TOPICS.orders, messages: [o] });
    for (;;) {
      const { rows } = await pool.query("SELECT 1 FROM te_fills WHERE order_id = $1", [o.key]);
      if (rows.length) break;
      await sleep(5);
    }
    console.log(`a new order after the history: filled (te_fills) ${(performance.now() - s0).toFixed(0)} ms after it was sent; load average ${load()}`);
    await producer.disconnect();
    await admin.disconnect();
    await pool.end();
  } finally {
    if (engine) await stopServiceProcess(engine).catch(() => undefined);
    await Promise.allSettled([postgres.stop(), kafka.stop()]);
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
