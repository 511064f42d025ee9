/**
 * Per-test-file access to real servers: call `useServers(...)` at the top level of a test file.
 * Postgres, Kafka and ClickHouse come from the shared servers of global-setup.ts when present
 * (Postgres: a fresh database per file; ClickHouse: a fresh database per file; Kafka: shared
 * broker, use unique topic names), otherwise a private server is started for the file. Redis is
 * always private per file. Private servers are stopped in afterAll.
 */
import { afterAll, beforeAll, inject } from "vitest";
import { generatePassword, waitFor } from "./proc";
import { pg, kafkajs } from "./deps";
import { startPostgres } from "./postgres";
import { startRedis } from "./redis";
import { startKafka } from "./kafka";
import { startClickHouse } from "./clickhouse";
import { startWeaviate, WEAVIATE_BUILD_WAIT_MS } from "./weaviate";
import type { ServerHandle } from "./server";

export interface SharedCoordinates {
  postgres?: { adminUrl: string; port: number; user: string; password: string; startMs: number };
  kafka?: { brokers: string; startMs: number };
  clickhouse?: { url: string; user: string; password: string; startMs: number };
}

export interface Servers {
  /** POSTGRES_URL of a database of this file alone. */
  postgres: { url: string; adminUrl: string; env: { POSTGRES_URL: string; POSTGRES_CONNECT_TIMEOUT_MS: string } };
  redis: { url: string; env: { DRAGONFLY_URL: string } };
  kafka: { brokers: string; env: { KAFKA_BROKERS: string; KAFKA_CONNECT_TIMEOUT_MS: string } };
  clickhouse: {
    url: string;
    user: string;
    password: string;
    database: string;
    env: { CLICKHOUSE_URL: string; CLICKHOUSE_USER: string; CLICKHOUSE_PASSWORD: string; CLICKHOUSE_DATABASE: string };
  };
  /** A private Weaviate of this file (scripts/weaviate/build.sh builds the binary). */
  weaviate: { url: string; grpcPort: number; apiKey: string; readOnlyKey: string; env: { WEAVIATE_URL: string; WEAVIATE_GRPC_PORT: string; WEAVIATE_API_KEY: string } };
  /** Union of the env of every requested server. */
  env: Record<string, string>;
}

type Kind = "postgres" | "redis" | "kafka" | "clickhouse" | "weaviate";

function provided(): SharedCoordinates {
  try {
    return inject("harness") ?? {};
  } catch {
    return {};
  }
}

async function chQuery(url: string, user: string, password: string, sql: string): Promise<void> {
  const res = await fetch(url, {
    method: "POST",
    body: sql,
    headers: { "X-ClickHouse-User": user, "X-ClickHouse-Key": password },
  });
  if (!res.ok) throw new Error(`clickhouse: ${await res.text()}`);
}

/** The shared broker starts in the background (global-setup.ts): wait for a real admin round trip. */
/**
 * As long as the global setup's own start bound (HARNESS_KAFKA_START_MS): at load 25 on two cores
 * the JVM broker took over four minutes, and a file giving up sooner failed for nothing.
 */
export const SHARED_KAFKA_WAIT_MS = Number(process.env.HARNESS_KAFKA_WAIT_MS ?? process.env.HARNESS_KAFKA_START_MS ?? 480_000);

async function waitForSharedKafka(brokers: string, timeoutMs = SHARED_KAFKA_WAIT_MS): Promise<void> {
  await waitFor(
    `shared kafka ${brokers} (started by tests/harness/global-setup.ts; see its output)`,
    async () => {
      const admin = new kafkajs.Kafka({
        clientId: "harness-wait",
        brokers: [brokers],
        logLevel: kafkajs.logLevel.NOTHING,
        connectionTimeout: 1000,
        retry: { retries: 0 },
      }).admin();
      try {
        await admin.connect();
        await admin.listTopics();
        return true;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/**
 * Registers beforeAll/afterAll; the returned object is filled in beforeAll (read it inside tests
 * or hooks, not at module top level).
 */
export function useServers<K extends Kind>(...kinds: K[]): Pick<Servers, K | "env"> {
  return useServersWith({}, ...kinds);
}

export interface ServerOptions {
  /**
   * A Kafka broker of this file's own instead of the shared one. The shared broker's topics are
   * shared by every file running at the same time: a file that publishes hostile messages there
   * (the hostile suite's poison on every topic) would feed them to the other files' consumers, and
   * a trading-engine executes every order on `trading.orders`: another file's engine would fill
   * this file's orders first (with its own fees) or reject them (no bar of that symbol yet). Every
   * file that runs a trading-engine takes a broker of its own. So does a file whose service reads a
   * platform topic from its beginning with a new consumer group (performance-analytics): on the shared
   * broker it reads every other file's traffic first, minutes of it on a loaded machine (session 42's
   * cold CI run at load 45 timed out waiting for its own four fills).
   */
  privateKafka?: boolean;
}

/** useServers with options (see ServerOptions). */
export function useServersWith<K extends Kind>(opts: ServerOptions, ...kinds: K[]): Pick<Servers, K | "env"> {
  const out = { env: {} } as Servers;
  const privates: ServerHandle[] = [];
  beforeAll(async () => {
    const shared = provided();
    const jobs: Promise<void>[] = [];
    if (kinds.includes("postgres" as K))
      jobs.push((async () => {
        let adminUrl = shared.postgres?.adminUrl;
        if (!adminUrl) {
          const s = await startPostgres();
          privates.push(s);
          adminUrl = s.url;
        }
        const db = `t_${generatePassword(6)}`;
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        try {
          await c.query(`CREATE DATABASE ${db}`);
        } finally {
          await c.end();
        }
        const u = new URL(adminUrl);
        u.pathname = `/${db}`;
        // Services under test wait longer for a connection than in production: CI hosts run at load 20+.
        out.postgres = { url: u.toString(), adminUrl, env: { POSTGRES_URL: u.toString(), POSTGRES_CONNECT_TIMEOUT_MS: "30000" } };
      })());
    if (kinds.includes("redis" as K))
      jobs.push((async () => {
        const s = await startRedis();
        privates.push(s);
        out.redis = { url: s.url, env: s.env };
      })());
    if (kinds.includes("kafka" as K))
      jobs.push((async () => {
        let brokers = opts.privateKafka ? undefined : shared.kafka?.brokers;
        if (!brokers) {
          const s = await startKafka();
          privates.push(s);
          brokers = s.url;
        } else {
          await waitForSharedKafka(brokers);
        }
        out.kafka = { brokers, env: { KAFKA_BROKERS: brokers, KAFKA_CONNECT_TIMEOUT_MS: "30000" } };
      })());
    if (kinds.includes("clickhouse" as K))
      jobs.push((async () => {
        let c = shared.clickhouse;
        if (!c) {
          const s = await startClickHouse();
          privates.push(s);
          c = { url: s.url, user: s.user, password: s.password, startMs: s.lastStartMs };
        }
        const database = `t_${generatePassword(6)}`;
        await chQuery(c.url, c.user, c.password, `CREATE DATABASE ${database}`);
        out.clickhouse = {
          url: c.url,
          user: c.user,
          password: c.password,
          database,
          env: { CLICKHOUSE_URL: c.url, CLICKHOUSE_USER: c.user, CLICKHOUSE_PASSWORD: c.password, CLICKHOUSE_DATABASE: database },
        };
      })());
    if (kinds.includes("weaviate" as K))
      jobs.push((async () => {
        const s = await startWeaviate();
        privates.push(s);
        out.weaviate = { url: s.url, grpcPort: s.grpcPort, apiKey: s.apiKey, readOnlyKey: s.readOnlyKey, env: s.env };
      })());
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    for (const k of kinds) Object.assign(out.env, (out as unknown as Record<string, { env: Record<string, string> }>)[k].env);
  }, SHARED_KAFKA_WAIT_MS + 120_000 + (kinds.includes("weaviate" as K) ? WEAVIATE_BUILD_WAIT_MS : 0));
  afterAll(async () => {
    await Promise.allSettled(privates.map((s) => s.stop()));
  });
  return out;
}
