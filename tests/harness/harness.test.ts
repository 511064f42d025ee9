/**
 * The harness itself: every server starts on loopback with auth, answers a real query, is
 * unreachable after kill() (SIGKILL), and after restart() is reachable on the same port with the
 * data written before the crash.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  startClickHouse,
  startKafka,
  startPostgres,
  startRedis,
  pg,
  Redis,
  type ClickHouseServer,
  type KafkaServer,
  type PostgresServer,
  type RedisServer,
} from "./index";
import { useServers } from "./shared";
import { createTopicsReady, waitForTopicLeaders } from "../../services/src/kit/datastores/kafka";

const timings: Record<string, number[]> = {};
const note = (kind: string, ms: number) => (timings[kind] ??= []).push(ms);
afterAll(() => console.log("[harness] start times (ms):", JSON.stringify(timings)));

describe("postgres", () => {
  let s: PostgresServer;
  afterAll(() => s?.stop());

  it("starts with scram auth, survives kill/restart with data", { timeout: 120_000 }, async () => {
    s = await startPostgres();
    note("postgres", s.lastStartMs);
    expect(s.url).toMatch(/^postgresql:\/\/harness:[0-9a-f]+@127\.0\.0\.1:\d+\/postgres$/);
    expect(s.env.POSTGRES_URL).toBe(s.url);
    await s.query("CREATE TABLE t (id int primary key, v text)");
    await s.query("INSERT INTO t VALUES (1, 'before crash')");
    const [{ method }] = await s.query<{ method: string }>("SELECT current_setting('password_encryption') AS method");
    expect(method).toBe("scram-sha-256");
    // wrong password is refused
    const bad = new pg.Client({ connectionString: s.url.replace(s.password, "wrong"), connectionTimeoutMillis: 2000 });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);

    const port = s.port;
    await s.kill();
    expect(s.running).toBe(false);
    const c = new pg.Client({ connectionString: s.url, connectionTimeoutMillis: 1000 });
    await expect(c.connect()).rejects.toThrow();

    await s.restart();
    note("postgres", s.lastStartMs);
    expect(s.port).toBe(port);
    expect(await s.query("SELECT v FROM t WHERE id = 1")).toEqual([{ v: "before crash" }]);
    const url2 = await s.createDatabase("second_db");
    expect(url2).toMatch(/\/second_db$/);
  });
});

describe("redis", () => {
  let s: RedisServer;
  afterAll(() => s?.stop());

  it("starts with requirepass, survives kill/restart with data (AOF)", async () => {
    s = await startRedis();
    note("redis", s.lastStartMs);
    expect(s.env.DRAGONFLY_URL).toMatch(/^redis:\/\/:[0-9a-f]+@127\.0\.0\.1:\d+$/);
    const r = new Redis(s.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await r.connect();
    await r.set("k", "before crash");
    expect(await r.get("k")).toBe("before crash");
    r.disconnect();
    const anon = new Redis({ host: "127.0.0.1", port: s.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anon.on("error", () => undefined);
    await anon.connect();
    await expect(anon.get("k")).rejects.toThrow(/NOAUTH/);
    anon.disconnect();

    await s.kill();
    const dead = new Redis(s.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on("error", () => undefined);
    await expect(dead.connect()).rejects.toThrow();
    dead.disconnect();

    await s.restart();
    note("redis", s.lastStartMs);
    const r2 = new Redis(s.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await r2.connect();
    expect(await r2.get("k")).toBe("before crash");
    r2.disconnect();
  });
});

describe("clickhouse", () => {
  let s: ClickHouseServer;
  afterAll(() => s?.stop());

  it("starts with a password, survives kill/restart with data", async () => {
    s = await startClickHouse();
    note("clickhouse", s.lastStartMs);
    expect(Object.keys(s.env).sort()).toEqual(["CLICKHOUSE_DATABASE", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_URL", "CLICKHOUSE_USER"]);
    expect((await s.query("SELECT version()")).trim()).toMatch(/^\d+\.\d+/);
    await s.query("CREATE TABLE t (id UInt32, v String) ENGINE = MergeTree ORDER BY id");
    await s.query("INSERT INTO t VALUES (1, 'before crash')");
    const unauth = await fetch(`${s.url}/?query=SELECT%201`);
    expect(unauth.ok).toBe(false);

    await s.kill();
    await expect(fetch(`${s.url}/?query=SELECT%201`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();

    await s.restart();
    note("clickhouse", s.lastStartMs);
    expect((await s.query("SELECT v FROM t WHERE id = 1")).trim()).toBe("before crash");
  });
});

describe("kafka", () => {
  let s: KafkaServer;
  afterAll(() => s?.stop());

  it("starts KRaft single node, survives kill/restart with topic and messages", async () => {
    s = await startKafka();
    note("kafka", s.lastStartMs);
    expect(s.env.KAFKA_BROKERS).toBe(`127.0.0.1:${s.port}`);
    const kafka = s.client();
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic: "harness-t", numPartitions: 1, replicationFactor: 1 }]);
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: "harness-t", acks: -1, messages: [{ key: "k", value: "before crash" }] });
    await producer.disconnect();

    await s.kill();
    const deadAdmin = s.client("dead").admin();
    await expect(deadAdmin.connect()).rejects.toThrow();

    await s.restart();
    note("kafka", s.lastStartMs);
    const admin2 = s.client().admin();
    await admin2.connect();
    expect(await admin2.listTopics()).toContain("harness-t");
    await waitForTopicLeaders(admin2, [{ topic: "harness-t", numPartitions: 1 }]); // served again after the restart
    const offsets = await admin2.fetchTopicOffsets("harness-t");
    await admin2.disconnect();
    expect(offsets[0].high).toBe("1");
  }, 300_000); // two Kafka starts: 13 s each on an idle 2-core machine, 30 s+ when loaded
});

describe("useServers (shared servers of global-setup, private redis)", () => {
  const srv = useServers("postgres", "redis", "kafka", "clickhouse");

  it("gives each file its own database and the conventions env", async () => {
    expect(Object.keys(srv.env).sort()).toEqual([
      "CLICKHOUSE_DATABASE",
      "CLICKHOUSE_PASSWORD",
      "CLICKHOUSE_URL",
      "CLICKHOUSE_USER",
      "DRAGONFLY_URL",
      "KAFKA_BROKERS",
      "KAFKA_CONNECT_TIMEOUT_MS",
      "POSTGRES_CONNECT_TIMEOUT_MS",
      "POSTGRES_URL",
    ]);
    const c = new pg.Client({ connectionString: srv.postgres.url });
    await c.connect();
    const { rows } = await c.query("SELECT current_database() AS db");
    await c.end();
    expect(rows[0].db).toMatch(/^t_/);
    const r = new Redis(srv.redis.url);
    expect(await r.ping()).toBe("PONG");
    r.disconnect();
  });
});
