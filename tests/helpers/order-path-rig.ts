/**
 * What the in-process order-path tests share (order-path, kill-switch-resting, ai strategy-delete):
 * a private Kafka broker with the platform's topics, the PostgreSQL migrations, a producer, a Redis
 * client with the symbol's last price, and the services' environment for fast tests (short outbox
 * intervals and consumer sessions, no order-rate limit). Each file starts its own services on it.
 */
import { kafkajs, pg, Redis, startKafka, type KafkaServer } from "../harness";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import { lastPriceKey } from "../../services/src/trading/events";

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
