/**
 * What the in-process order-path tests share (order-path, kill-switch-resting, ai strategy-delete):
 * a private Kafka broker with the platform's topics, the PostgreSQL migrations, a producer, a Redis
 * client with the symbol's last price, and the services' environment for fast tests (short outbox
 * intervals and consumer sessions, no order-rate limit). Each file starts its own services on it;
 * orderPathProbe asks them what the resting-order tests wait for; sweepPassesRequestNothing runs
 * passes of the kill switch sweep to show that more of them change nothing.
 */
import { kafkajs, pg, Redis, startKafka, type KafkaServer } from "../harness";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import { lastPriceKey, TOPICS } from "../../services/src/trading/events";
import { http, waitUntil } from "../trading/e2e-helpers";
import type { Service } from "../../services/src/kit";
import { KillSwitchSweeper } from "../../services/src/services/order-management/kill-switch";

export interface OrderPathRig {
  kafka: KafkaServer;
  /** The shared servers' environment, the broker, the fast settings, then the caller's `env`. */
  env: Record<string, string>;
  pool: InstanceType<typeof pg.Pool>;
  producer: ReturnType<InstanceType<typeof kafkajs.Kafka>["producer"]>;
  redis: InstanceType<typeof Redis>;
  /** Stops what start made (the services started on it are the caller's to close first). */
  stop(): Promise<void>;
}

export async function startOrderPathRig(servers: Record<string, string>, o: { symbol: string; lastPrice: string; env?: Record<string, string> }): Promise<OrderPathRig> {
  const kafka = await startKafka();
  const env: Record<string, string> = {
    ...servers,
    KAFKA_BROKERS: kafka.url,
    LOG_LEVEL: "error",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    OM_OUTBOX_INTERVAL_MS: "50",
    TE_OUTBOX_INTERVAL_MS: "50",
    RISK_MAX_ORDERS_PER_WINDOW: "100000",
    POSTGRES_POOL_MAX: "6",
    ...o.env,
  };
  const pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  const k = new kafkajs.Kafka({ brokers: [kafka.url], logLevel: kafkajs.logLevel.NOTHING });
  const admin = k.admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  const producer = k.producer();
  await producer.connect();
  const redis = new Redis(env.DRAGONFLY_URL);
  await redis.set(lastPriceKey(o.symbol), o.lastPrice);
  return {
    kafka, env, pool, producer, redis,
    async stop() {
      await producer.disconnect().catch(() => undefined);
      redis.disconnect();
      await pool.end();
      await kafka.stop();
    },
  };
}

/**
 * What a test of resting orders asks the order path's in-process services, for one symbol: an
 * order as order-management answers it, the engine's book as its owner sees it, and the next closed
 * 1m bar sent through Kafka, waited for until the engine took it (open times only grow). The URLs
 * and the producer are read at each call: made before the rig starts, and a test may restart
 * order-management.
 */
export function orderPathProbe(o: { symbol: string; omUrl: () => string; engineUrl: () => string; producer: () => OrderPathRig["producer"]; waitMs: number }) {
  const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
  const orderOf = async (userId: string, id: string) => (await http("GET", `${o.omUrl()}/${id}`, { headers: as(userId) })).body;
  const resting = async (userId: string) => ((await http("GET", `${o.engineUrl()}/book`, { headers: as(userId) })).body.resting as { orderId: string }[]).map((r) => r.orderId);
  let minute = 0;
  return {
    as,
    orderOf,
    resting,
    waitStatus: (userId: string, id: string, status: string) =>
      waitUntil(`order ${id} ${status}`, async () => {
        const order = await orderOf(userId, id);
        return order.status === status ? order : undefined;
      }, o.waitMs),
    waitResting: (userId: string, ids: string[]) =>
      waitUntil(`${ids.join(", ")} resting`, async () => {
        const r = await resting(userId);
        return ids.every((id) => r.includes(id));
      }, o.waitMs),
    async sendBar(close: string, low = close, high = close): Promise<number> {
      const openTime = Date.UTC(2026, 3, 1) + minute++ * 60_000;
      const b = { symbol: o.symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high, low, close, volume: "1000" };
      await o.producer().send({ topic: TOPICS.candles, messages: [{ key: o.symbol, value: JSON.stringify(b) }] });
      await waitUntil("engine took the bar", async () => (await http("GET", `${o.engineUrl()}/last/${o.symbol}`)).body.bar?.openTime === openTime, o.waitMs);
      return openTime;
    },
  };
}

/**
 * "More passes of the kill switch sweep change nothing", shown by passes that ran: `passes` of them
 * run here one after another (order-management's sweeper's code, on its database), each requesting
 * no cancel. A pause instead proved nothing on a loaded machine, where it may hold no pass at all.
 */
export async function sweepPassesRequestNothing(om: Service<any>, passes = 3): Promise<void> {
  const sweeper = new KillSwitchSweeper(om.app.pg, { intervalMs: 1_000, log: om.app.log, committed: () => undefined });
  for (let i = 1; i <= passes; i++) if ((await sweeper.sweepOnce()) !== 0) throw new Error(`sweep pass ${i} requested a cancel`);
}
