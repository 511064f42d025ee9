/**
 * Every datastore's schema for an in-process platform test: PostgreSQL and ClickHouse migrations
 * (the database-service migration runner's pieces) and the Kafka topics. Returns a small pool on the
 * test's database for the test's own queries; the caller ends it.
 */
import { createClickHouse } from "../../services/src/kit/datastores";
import { bindParamsForLegacyServer } from "../../services/src/kit/clickhouse/legacy-binding";
import { createPostgres, type PostgresClient } from "../../services/src/kit/datastores/postgres";
import { ensureKafkaTopics, runClickHouseMigrations, runPostgresMigrations } from "../../services/src/migrations";
import { kafkajs, pg } from "../harness";

export async function migrateAll(env: Record<string, string>): Promise<InstanceType<typeof pg.Pool>> {
  const pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 4 });
  await runPostgresMigrations(pool);
  await migrateClickHouseAndTopics(env);
  return pool;
}

/**
 * The PostgreSQL migrations on the database at `url`, then the kit's client of it (`log` gets what
 * the client logs), for a test of data access or a service's logic without the service around it.
 */
export async function migratedKitPostgres(url: string, log: Parameters<typeof createPostgres>[1], poolMax: number): Promise<PostgresClient> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  await runPostgresMigrations(pool);
  await pool.end();
  return createPostgres({ POSTGRES_URL: url, POSTGRES_POOL_MAX: poolMax, POSTGRES_CONNECT_TIMEOUT_MS: 30_000 } as Parameters<typeof createPostgres>[0], log);
}

/** A kit ClickHouse client of the harness's database (`env`: its CLICKHOUSE_* variables), migrated. */
export async function migratedClickHouse(env: Record<string, string>): Promise<ReturnType<typeof createClickHouse>> {
  const ch = createClickHouse({ CLICKHOUSE_URL: env.CLICKHOUSE_URL, CLICKHOUSE_USER: env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE });
  await runClickHouseMigrations(ch);
  return ch;
}

/**
 * The kit client `ch` whose SELECTs run under ClickHouse `settings` (e.g. `max_memory_usage`,
 * `max_rows_to_read`: the server stops, with an error, a query that needs more), binding parameters
 * as the kit does (on the server, or client-side for a legacy server). For tests bounding what a
 * service's read costs; the kit's own client takes no per-query settings, which production never needs.
 */
export function clickHouseUnder(ch: ReturnType<typeof createClickHouse>, settings: Record<string, string>): ReturnType<typeof createClickHouse> {
  return {
    ...ch,
    async query<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
      const rs =
        (await ch.paramBinding()) === "server"
          ? await ch.client.query({ query, query_params: params, format: "JSONEachRow", clickhouse_settings: settings })
          : await ch.client.query({ query: bindParamsForLegacyServer(query, params), format: "JSONEachRow", clickhouse_settings: settings });
      return rs.json<T>();
    },
  };
}

/** The ClickHouse migrations and the Kafka topics alone (a test or benchmark without PostgreSQL). */
export async function migrateClickHouseAndTopics(env: Record<string, string>): Promise<void> {
  await (await migratedClickHouse(env)).close();
  const admin = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
}
