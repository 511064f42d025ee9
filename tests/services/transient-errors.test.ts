/**
 * The kit's one outage classifier (services/src/kit/transient-errors.ts), used by the HTTP error
 * handler (503 DATASTORE_UNAVAILABLE) and the Kafka consumers (retry, not dead letter). Errors come
 * from the real client libraries: against real servers (Postgres, Redis, ClickHouse 18.16 of the
 * harness) for what the server says, against closed or silent local ports for outages; only the
 * server states this machine cannot provoke cheaply (serialization failure, too many connections,
 * Redis LOADING, Kafka protocol codes) are built from the libraries' own error classes.
 */
import { createRequire } from "node:module";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { deadPort } from "../harness/dead-address";
import { kafkajs, pg, Redis, type KafkaJs } from "../harness/deps";
import { badRequest, createService, defineService, HttpError, isTransientError } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/clickhouse/client";
import { isRetriable, PoisonMessageError } from "../../services/src/trading/infra/deadLetters";

const servicesRequire = createRequire(join(__dirname, "..", "..", "services", "package.json"));
/** What kafkajs throws for a broker's error code (its protocol decoders call this); not in its .d.ts. */
const { createErrorFromCode } = servicesRequire("kafkajs/src/protocol/error") as { createErrorFromCode(code: number): KafkaJs.KafkaJSProtocolError };
/** kafkajs' retrier wraps a non-retriable error as `new KafkaJSNonRetriableError(e, { cause })` (src/retry/index.js); its .d.ts omits the second parameter. */
const NonRetriableError = kafkajs.KafkaJSNonRetriableError as new (e: Error, opts: { cause: Error }) => KafkaJs.KafkaJSNonRetriableError;
const { DatabaseError } = servicesRequire("pg-protocol") as typeof import("../../services/node_modules/pg-protocol");

const srv = useServers("postgres", "redis", "clickhouse");

/** The rejection of `p` (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

/** A local TCP server that accepts and then never answers, or closes every connection at once. */
async function tcpServer(mode: "silent" | "close"): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    if (mode === "close") s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const pgError = (code: string, message: string) => Object.assign(new DatabaseError(message, message.length, "error"), { code, severity: "ERROR" });

describe("outages are transient", () => {
  let closedPort: number;
  beforeAll(async () => {
    closedPort = await deadPort();
  });

  it("network codes: a refused connection (pg, ioredis, kafkajs)", async () => {
    const c = new pg.Client({ connectionString: `postgresql://u:p@127.0.0.1:${closedPort}/db` });
    const pgErr = await failure(c.connect());
    expect((pgErr as { code?: string }).code).toBe("ECONNREFUSED");
    expect(isTransientError(pgErr)).toBe(true);

    const redis = new Redis({ port: closedPort, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    redis.on("error", () => undefined);
    const redisErr = await failure(redis.connect());
    expect(isTransientError(redisErr)).toBe(true);
    redis.disconnect();

    const kafka = new kafkajs.Kafka({ brokers: [`127.0.0.1:${closedPort}`], logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 500 });
    const producer = kafka.producer();
    const kafkaErr = await failure(producer.connect());
    expect((kafkaErr as Error).name).toMatch(/^KafkaJS/);
    expect(isTransientError(kafkaErr)).toBe(true);
  });

  it("pg: a connection timeout, an exhausted pool, a backend terminated, a statement timeout, a lock timeout", async () => {
    const silent = await tcpServer("silent");
    try {
      const c = new pg.Client({ connectionString: `postgresql://u:p@127.0.0.1:${silent.port}/db`, connectionTimeoutMillis: 300 });
      const timeout = await failure(c.connect());
      expect((timeout as Error).message).toBe("timeout expired");
      expect(isTransientError(timeout)).toBe(true);
      const silentPool = new pg.Pool({ connectionString: `postgresql://u:p@127.0.0.1:${silent.port}/db`, connectionTimeoutMillis: 300 });
      const poolTimeout = await failure(silentPool.query("SELECT 1"));
      await silentPool.end();
      expect((poolTimeout as Error).message).toMatch(/^Connection terminated due to connection timeout/);
      expect(isTransientError(poolTimeout)).toBe(true);
    } finally {
      await silent.close();
    }

    // The one connection is made with a generous bound (a loaded machine takes seconds for a real
    // login); only the wait for a second one, which can never be served, gets the short bound
    // (pg-pool reads connectionTimeoutMillis at each checkout).
    const pool = new pg.Pool({ connectionString: srv.postgres.url, max: 1, connectionTimeoutMillis: 60_000 });
    const held = await pool.connect();
    pool.options.connectionTimeoutMillis = 200;
    try {
      const exhausted = await failure(pool.query("SELECT 1"));
      expect((exhausted as Error).message).toBe("timeout exceeded when trying to connect");
      expect(isTransientError(exhausted)).toBe(true);
    } finally {
      held.release();
      await pool.end();
    }

    const admin = new pg.Client({ connectionString: srv.postgres.url });
    const victim = new pg.Client({ connectionString: srv.postgres.url });
    victim.on("error", () => undefined);
    await admin.connect();
    await victim.connect();
    try {
      const { rows } = await victim.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
      const terminated = await failure(victim.query("SELECT 1"));
      expect(isTransientError(terminated)).toBe(true); // 57P01, or the connection already gone

      const statement = await failure(admin.query("SET statement_timeout = 50; SELECT pg_sleep(5)"));
      expect((statement as { code?: string }).code).toBe("57014");
      expect(isTransientError(statement)).toBe(true);
      await admin.query("SET statement_timeout = 0");

      await admin.query("CREATE TABLE IF NOT EXISTS locked (id int)");
      const other = new pg.Client({ connectionString: srv.postgres.url });
      await other.connect();
      try {
        await other.query("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
        const lock = await failure(admin.query("SET lock_timeout = 50; SELECT * FROM locked"));
        expect((lock as { code?: string }).code).toBe("55P03");
        expect(isTransientError(lock)).toBe(true);
        await admin.query("SET lock_timeout = 0");
      } finally {
        await other.end();
      }
    } finally {
      await admin.end();
      await victim.end().catch(() => undefined);
    }

    expect(isTransientError(pgError("40001", "could not serialize access due to concurrent update"))).toBe(true);
    expect(isTransientError(pgError("40P01", "deadlock detected"))).toBe(true);
    expect(isTransientError(pgError("53300", "sorry, too many clients already"))).toBe(true);
    expect(isTransientError(pgError("57P03", "the database system is starting up"))).toBe(true);
    expect(isTransientError(pgError("08006", "connection failure"))).toBe(true);
  });

  it("ClickHouse: a server that closes the socket (the kit client retries once, then reports it)", async () => {
    const closing = await tcpServer("close");
    const ch = createClickHouse({ CLICKHOUSE_URL: `http://127.0.0.1:${closing.port}`, CLICKHOUSE_USER: "default", CLICKHOUSE_PASSWORD: "x", CLICKHOUSE_DATABASE: "default" });
    try {
      const closed = await failure(ch.client.query({ query: "SELECT 1", format: "JSONEachRow" }));
      expect(isTransientError(closed)).toBe(true);
    } finally {
      await ch.close();
      await closing.close();
    }
    // What a current server says under load (@clickhouse/client parses the code and type).
    const { ClickHouseError } = servicesRequire("@clickhouse/client") as typeof import("../../services/node_modules/@clickhouse/client");
    expect(isTransientError(new ClickHouseError({ message: "Too many simultaneous queries", code: "202", type: "TOO_MANY_SIMULTANEOUS_QUERIES" }))).toBe(true);
    expect(isTransientError(new Error("Code: 252, e.displayText() = DB::Exception: Too many parts (300)"))).toBe(true); // 18.16's unparsed form
  });

  it("Redis: a closed connection, a server loading its dataset, a connection given up on", async () => {
    const redis = new Redis(srv.redis.url);
    await redis.ping();
    redis.disconnect();
    const closed = await failure(redis.get("k"));
    expect((closed as Error).message).toBe("Connection is closed.");
    expect(isTransientError(closed)).toBe(true);

    expect(isTransientError(new Redis.ReplyError("LOADING Redis is loading the dataset in memory"))).toBe(true);
    expect(isTransientError(Object.assign(new Error("Reached the max retries per request limit (which is 0)."), { name: "MaxRetriesPerRequestError" }))).toBe(true);
  });

  it("Kafka: retriable protocol errors and exhausted retries", () => {
    const unknownTopic = createErrorFromCode(3); // UNKNOWN_TOPIC_OR_PARTITION
    expect(isTransientError(unknownTopic)).toBe(true);
    expect(isTransientError(createErrorFromCode(7))).toBe(true); // REQUEST_TIMED_OUT
    expect(isTransientError(new kafkajs.KafkaJSNumberOfRetriesExceeded(unknownTopic, { retryCount: 5, retryTime: 1000 }))).toBe(true);
  });

  it("a wrapped outage (cause)", () => {
    expect(isTransientError(new Error("write failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) }))).toBe(true);
  });
});

describe("what the client caused is not transient", () => {
  let db: InstanceType<typeof pg.Client>;
  beforeAll(async () => {
    db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    await db.query("CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY, balance numeric CHECK (balance >= 0))");
  });
  afterAll(() => db?.end());

  it("PostgreSQL: bad input, constraints, a syntax error, even when the message quotes outage words", async () => {
    const id = "00000000-0000-0000-0000-000000000001";
    await db.query("INSERT INTO accounts VALUES ($1, 1) ON CONFLICT DO NOTHING", [id]);
    const refused: Array<[string, Promise<unknown>]> = [
      ["23505", db.query("INSERT INTO accounts VALUES ($1, 1)", [id])],
      ["23514", db.query("INSERT INTO accounts VALUES (gen_random_uuid(), -1)")],
      ["22P02", db.query("SELECT * FROM accounts WHERE id = $1", ["Connection terminated unexpectedly"])],
      ["22P02", db.query("SELECT * FROM accounts WHERE id = $1", ["timeout exceeded when trying to connect ECONNREFUSED"])],
      ["42601", db.query("SELEC 1")],
    ];
    for (const [code, p] of refused) {
      const err = await failure(p);
      expect((err as { code?: string }).code).toBe(code);
      expect(isTransientError(err), `${code}: ${(err as Error).message}`).toBe(false);
    }
  });

  it("ClickHouse 18.16: a syntax error and a missing table, with outage words in the query", async () => {
    const ch = createClickHouse({ CLICKHOUSE_URL: srv.clickhouse.url, CLICKHOUSE_USER: srv.clickhouse.user, CLICKHOUSE_PASSWORD: srv.clickhouse.password, CLICKHOUSE_DATABASE: srv.clickhouse.database });
    try {
      const syntax = await failure(ch.client.query({ query: "SELEC 'socket hang up ECONNRESET'", format: "JSONEachRow" }));
      expect(isTransientError(syntax), (syntax as Error).message).toBe(false);
      const missing = await failure(ch.query("SELECT {x:String} AS x FROM no_such_table_socket_hang_up", { x: "Connection terminated" }));
      expect(isTransientError(missing), (missing as Error).message).toBe(false);
    } finally {
      await ch.close();
    }
  });

  it("Redis: a command against the wrong type", async () => {
    const redis = new Redis(srv.redis.url);
    try {
      await redis.set("str", "v");
      const wrongType = await failure(redis.lpush("str", "x"));
      expect((wrongType as Error).message).toMatch(/^WRONGTYPE/);
      expect(isTransientError(wrongType)).toBe(false);
    } finally {
      redis.disconnect();
    }
  });

  it("Kafka: a message too large (non-retriable), as thrown and as kafkajs' retrier wraps it", () => {
    const tooLarge = createErrorFromCode(10); // MESSAGE_TOO_LARGE
    expect(isTransientError(tooLarge)).toBe(false);
    expect(isTransientError(new NonRetriableError(tooLarge, { cause: tooLarge }))).toBe(false);
  });

  it("validation and HTTP client errors, bugs, poison messages, non-errors", () => {
    expect(isTransientError(badRequest("socket hang up", "note"))).toBe(false);
    expect(isTransientError(new HttpError(409, "CONFLICT", "Connection terminated"))).toBe(false);
    expect(isTransientError(Object.assign(new Error("body/price must match pattern"), { statusCode: 400, validation: [{}] }))).toBe(false);
    expect(isTransientError(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    const poison = new PoisonMessageError("Connection terminated");
    expect(isRetriable(poison)).toBe(false);
    expect(isRetriable(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(true);
    for (const x of ["boom", null, undefined, 42, {}]) expect(isTransientError(x)).toBe(false);
  });
});

describe("the HTTP answer", () => {
  it("an unreachable datastore answers 503 DATASTORE_UNAVAILABLE with Retry-After", async () => {
    const port = await deadPort();
    const probe = defineService({
      name: "database-service",
      register(ctx) {
        ctx.app.get("/probe", async () => (await ctx.app.pg.query("SELECT 1")).rows);
      },
    });
    const svc = await createService(probe, { env: { POSTGRES_URL: `postgresql://u:p@127.0.0.1:${port}/db`, LOG_LEVEL: "silent" }, defaultMetrics: false });
    try {
      const r = await svc.app.inject({ url: "/probe" });
      expect(r.statusCode).toBe(503);
      expect(r.headers["retry-after"]).toBe("1");
      expect(r.json()).toMatchObject({ error: { code: "DATASTORE_UNAVAILABLE" } });
    } finally {
      await svc.close();
    }
  });
});
