/**
 * database-service over the harness's PostgreSQL and ClickHouse (and Kafka, for the files that
 * replay): the set-up the dead-letter suites share (before, five files spelt it each): a pool on
 * the file's migrated PostgreSQL database, the kit's client of its migrated ClickHouse database, and
 * database-service started in process. `useDatabaseServiceRig()` at the top level of a test file
 * starts it all in beforeAll and stops it in afterAll; the fields are there once beforeAll has run
 * (inside tests and hooks). A suite's own hooks, registered after the call, run after the rig's
 * beforeAll and before its afterAll.
 */
import { afterAll, beforeAll } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import databaseService from "../../services/src/services/database-service";
import { migratedClickHouse } from "./schemas";

/** An admin's identity headers, as the gateway forwards them: the dead-letter routes are admins' only. */
export const ADMIN: Readonly<Record<string, string>> = { "x-user-id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", "x-user-role": "admin", "x-auth-method": "jwt" };

export interface DatabaseServiceRigOptions {
  /** ClickHouse too (default true): its variables in `env`, its database migrated, `ch` its client. */
  clickhouse?: boolean;
  /** Kafka too (default false): KAFKA_BROKERS in `env`, the platform's topics made. */
  kafka?: boolean;
  /** database-service's variables beside the harness's (they win); `false`: none started at first (the file starts its own, `start`). */
  service?: Record<string, string> | false;
}

/** A request's answer: its status, JSON body and Retry-After. */
export interface RigAnswer {
  status: number;
  body: any;
  retryAfter: string | number | string[] | undefined;
}

export interface DatabaseServiceRig {
  /** The harness's variables of the file's datastores. */
  readonly env: Record<string, string>;
  readonly pool: InstanceType<typeof pg.Pool>;
  readonly ch: ClickHouseKitClient;
  /** The database-service started in beforeAll. */
  readonly db: Service<any>;
  /** Another database-service on the file's datastores, `env` beside the harness's (they win), logging nothing; the caller closes it. */
  start(env?: Record<string, string>): Promise<Service<any>>;
  /** A request to the rig's database-service, as an admin unless `headers` say otherwise. */
  call(method: "GET" | "POST", url: string, headers?: Record<string, string>): Promise<RigAnswer>;
}

export function useDatabaseServiceRig(opts: DatabaseServiceRigOptions = {}): DatabaseServiceRig {
  const withClickHouse = opts.clickhouse ?? true;
  const srv = useServers(...(["postgres", ...(withClickHouse ? ["clickhouse"] : []), ...(opts.kafka ? ["kafka"] : [])] as Array<"postgres" | "clickhouse" | "kafka">));
  let pool: InstanceType<typeof pg.Pool> | undefined;
  let ch: ClickHouseKitClient | undefined;
  let db: Service<any> | undefined;
  const ready = <T>(field: string, value: T | undefined): T => {
    if (value === undefined) throw new Error(`the database-service rig's ${field} is not there: it is set up in beforeAll${field === "ch" && !withClickHouse ? " (and this rig runs without ClickHouse)" : ""}${field === "db" && opts.service === false ? " (and this rig starts none: `start`)" : ""}`);
    return value;
  };
  const start = (env: Record<string, string> = {}) => createService(databaseService, { env: { ...srv.env, LOG_LEVEL: "fatal", ...env }, defaultMetrics: false });

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 4 });
    await runPostgresMigrations(pool);
    if (withClickHouse) ch = await migratedClickHouse(srv.env);
    if (opts.kafka) {
      const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        await ensureKafkaTopics(admin);
      } finally {
        await admin.disconnect();
      }
    }
    if (opts.service !== false) db = await start(opts.service ?? {});
  }, 300_000);

  afterAll(async () => {
    await db?.close();
    await ch?.close();
    await pool?.end();
  }, 60_000);

  return {
    get env() { return srv.env; },
    get pool() { return ready("pool", pool); },
    get ch() { return ready("ch", ch); },
    get db() { return ready("db", db); },
    start,
    async call(method, url, headers = ADMIN) {
      const r = await ready("db", db).app.inject({ method, url, headers });
      return { status: r.statusCode, body: r.json(), retryAfter: r.headers["retry-after"] };
    },
  };
}
