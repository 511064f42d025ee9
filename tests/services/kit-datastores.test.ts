/**
 * The kit's datastore clients against real servers (tests/harness): Postgres, Redis, ClickHouse
 * (server-side query parameters), Kafka (idempotent producer + consumer helper), and optional
 * datastores without variables reported as disabled.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService, defineService, DatastoreDisabledError, type Service } from "../../services/src/kit";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";
import { createPostgres, executeStatement, executeWith, prepareStatements, PREPARED_MAX_AGE_MS, type PreparedStatement } from "../../services/src/kit/datastores/postgres";

// database-service: requires postgres, every other datastore optional.
const probe = defineService({ name: "database-service", register() {} });
const srv = useServers("postgres", "redis", "kafka", "clickhouse");
let svc: Service;

beforeAll(async () => {
  svc = await createService(probe, { env: { ...srv.env, LOG_LEVEL: "silent", READY_TIMEOUT_MS: "5000" }, defaultMetrics: false });
});
afterAll(() => svc?.close());

describe("kit datastores", () => {
  it("/ready pings every configured datastore and reports unconfigured optional ones as disabled", async () => {
    const r = await svc.app.inject({ url: "/ready" });
    const body = r.json();
    expect(r.statusCode, JSON.stringify(body)).toBe(200);
    expect(body.dependencies).toMatchObject({
      postgres: { status: "ok", required: true },
      dragonfly: { status: "ok", required: false },
      clickhouse: { status: "ok" },
      redpanda: { status: "ok" },
      arangodb: { status: "disabled" },
      weaviate: { status: "disabled" },
    });
    expect(() => svc.ctx.datastores.arango).toThrow(DatastoreDisabledError);
    expect(() => svc.ctx.datastores.arango).toThrow("ARANGO_URL is not set");
  });

  // Session 40's secret-leak hunt: the client's ping is ClickHouse's `/ping`, which answers anyone, so
  // a service with a wrong CLICKHOUSE_PASSWORD reported ready and failed its first query.
  it("/ready of a service requiring ClickHouse is 503 with a wrong ClickHouse password, naming no password", async () => {
    const wrong = `wrong${randomBytes(12).toString("hex")}`;
    const needsClickHouse = defineService({ name: "chain-debug", register() {} }); // requires clickhouse alone
    const s = await createService(needsClickHouse, { env: { ...srv.env, CLICKHOUSE_PASSWORD: wrong, LOG_LEVEL: "silent", READY_TIMEOUT_MS: "5000" }, defaultMetrics: false });
    try {
      const r = await s.app.inject({ url: "/ready" });
      expect(r.statusCode, r.body).toBe(503);
      expect(r.json().dependencies.clickhouse).toMatchObject({ status: "failed", required: true });
      expect(r.body).not.toContain(wrong);
      expect(r.body).not.toContain(srv.env.CLICKHOUSE_PASSWORD);
    } finally {
      await s.close();
    }
    // The right password still passes.
    const ok = await createService(needsClickHouse, { env: { ...srv.env, LOG_LEVEL: "silent", READY_TIMEOUT_MS: "5000" }, defaultMetrics: false });
    try {
      const r = await ok.app.inject({ url: "/ready" });
      expect(r.statusCode, r.body).toBe(200);
    } finally {
      await ok.close();
    }
  });

  it("postgres transaction rolls back on error", async () => {
    const pg = svc.ctx.datastores.postgres;
    await pg.query("CREATE TABLE kit_t (v text)");
    await expect(
      pg.transaction(async (c) => {
        await c.query("INSERT INTO kit_t VALUES ($1)", ["x"]);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect((await pg.query("SELECT count(*)::int AS n FROM kit_t")).rows[0].n).toBe(0);
  });

  it("postgres transaction prepares the statements its begin EXECUTEs once per connection", async () => {
    // One connection, so every transaction below runs on it.
    const pg = createPostgres({ POSTGRES_URL: srv.env.POSTGRES_URL, POSTGRES_POOL_MAX: 1, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 }, svc.ctx.log);
    try {
      const twice: PreparedStatement = { name: "kit_twice", params: ["int"], text: "SELECT $1 * 2 AS v" };
      const backend = async () => (await pg.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const pid = await backend();
      const run = (n: number) => pg.transaction(async (_c, begun) => begun[0], { begin: executeStatement(twice, [String(n)]), prepared: [twice] });
      expect(await run(3)).toEqual({ v: 6 });
      expect(await run(5)).toEqual({ v: 10 });
      // Planned once: the generic plan, not one for each call's values.
      const listed = await pg.query<{ name: string; generic_plans: string; custom_plans: string }>("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements");
      expect(listed.rows).toEqual([{ name: "kit_twice", generic_plans: "2", custom_plans: "0" }]);
      expect(await backend()).toBe(pid);
      expect(() => executeStatement(twice, [])).toThrow(/takes 1 arguments/);
      // Prepared again once older than PREPARED_MAX_AGE_MS (its generic plan made again from the tables as they are now), not before.
      const client = await pg.pool.connect(); // the pool's one connection
      try {
        const preparedAt = async () => (await client.query<{ at: string }>("SELECT prepare_time::text AS at FROM pg_prepared_statements WHERE name = 'kit_twice'")).rows;
        const [first] = await preparedAt();
        await prepareStatements(client, [twice], performance.now() + PREPARED_MAX_AGE_MS - 1000);
        expect(await preparedAt()).toEqual([first]);
        await prepareStatements(client, [twice], performance.now() + PREPARED_MAX_AGE_MS);
        const [again] = await preparedAt();
        expect(again.at > first.at).toBe(true);
      } finally {
        client.release();
      }
      expect(await run(4)).toEqual({ v: 8 });
      // A PREPARE that fails leaves nothing half-known: the connection is dropped, and the next one prepares afresh.
      const broken: PreparedStatement = { name: "kit_broken", params: [], text: "SELECT * FROM no_such_table" };
      await expect(pg.transaction(async () => undefined, { begin: executeStatement(broken, []), prepared: [twice, broken] })).rejects.toThrow(/no_such_table/);
      expect(await backend()).not.toBe(pid);
      expect(await run(7)).toEqual({ v: 14 });
      await expect(pg.transaction(async () => undefined, { prepared: [{ name: "Bad Name; DROP", params: [], text: "SELECT 1" }] })).rejects.toThrow(/bad prepared statement name/);
    } finally {
      await pg.close();
    }
  });

  it("postgres transaction sends its last statement with COMMIT in one round trip; values written as literals read back as parameters do", async () => {
    const pg = svc.ctx.datastores.postgres;
    await pg.query("CREATE TABLE kit_c (n bigint, t text, d numeric, j jsonb, u uuid)");
    const insert: PreparedStatement = {
      name: "kit_c_insert",
      params: ["bigint[]", "text[]", "numeric[]", "jsonb[]", "uuid[]"],
      text: "INSERT INTO kit_c SELECT * FROM unnest($1, $2, $3, $4, $5) RETURNING n, t, d::text, j, u",
    };
    const hostile = ["o'brien", "{x,y}", 'a"b\\c', "NULL", "'); DROP TABLE kit_c; --", "ünï ✓", "$1 $$x$$", ""];
    const values = [hostile.map((_, i) => i), hostile, hostile.map((_, i) => `${i}.5`), hostile.map((t) => JSON.stringify({ t })), hostile.map(() => randomUUID())];
    const sent: string[] = [];
    const rows = await pg.transaction(
      async (c, _begun, _each, commitWith) => {
        const query = c.query.bind(c);
        c.query = ((text: string, v?: unknown[]) => (sent.push(text), query(text, v))) as typeof c.query;
        try {
          return await commitWith(executeWith(insert, values));
        } finally {
          c.query = query;
        }
      },
      { prepared: [insert] },
    );
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/;\nCOMMIT$/);
    const expected = hostile.map((t, i) => ({ n: String(i), t, d: `${i}.5`, j: { t }, u: values[4][i] }));
    expect(rows).toEqual(expected);
    // Committed (another connection sees the rows), and as the parameterised statement would have stored them.
    expect((await pg.query("SELECT n, t, d::text, j, u FROM kit_c ORDER BY n")).rows).toEqual(expected);
    expect((await pg.query("SELECT count(*)::int AS n FROM kit_c WHERE t = ANY($1)", [hostile])).rows[0].n).toBe(hostile.length);
    expect(executeWith(insert, [[null], ["x"], [null], [null], [null]])).toContain("NULL");
    expect(() => executeWith(insert, [[1], ["a\u0000b"], [1], ["{}"], [randomUUID()]])).toThrow(/NUL/);

    // A last statement that fails: nothing of the transaction is committed, and the helper sends no COMMIT of its own.
    await expect(
      pg.transaction(async (c, _b, _e, commitWith) => {
        await c.query("INSERT INTO kit_c (n, t) VALUES (100, 'before')");
        return commitWith(executeWith(insert, [[101], ["x"], ["not a number"], ["{}"], [randomUUID()]]));
      }, { prepared: [insert] }),
    ).rejects.toThrow(/invalid input syntax for type numeric/);
    expect((await pg.query("SELECT count(*)::int AS n FROM kit_c WHERE n >= 100")).rows[0].n).toBe(0);
  });

  it("clickhouse binds query parameters server-side", async () => {
    const ch = svc.ctx.datastores.clickhouse;
    await ch.command("CREATE TABLE kit_ticks (symbol String, price Float64) ENGINE = MergeTree ORDER BY symbol");
    await ch.insert("kit_ticks", [{ symbol: "BTCUSDT", price: 1 }, { symbol: "x' OR 1=1 --", price: 2 }]);
    const rows = await ch.query<{ symbol: string; price: number }>("SELECT symbol, price FROM kit_ticks WHERE symbol = {s:String}", { s: "x' OR 1=1 --" });
    expect(rows).toEqual([{ symbol: "x' OR 1=1 --", price: 2 }]);
  });

  it("kafka: idempotent producer and consumer helper", async () => {
    const k = svc.ctx.datastores.kafka;
    const topic = `kit-${randomBytes(4).toString("hex")}`;
    const admin = k.kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 1, replicationFactor: 1 }]);
    await admin.disconnect();
    await k.send(topic, [{ key: "a", value: "one" }, { key: "b", value: "two" }]);
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      void k.consume({
        groupId: `g-${topic}`,
        topics: [topic],
        fromBeginning: true,
        eachMessage: async ({ message }) => {
          got.push(String(message.value));
          if (got.length === 2) resolve();
        },
      });
    });
    expect(got).toEqual(["one", "two"]);
  });
});

describe("clickhouse parameter binding", () => {
  it("renders typed literals and refuses values of the wrong type", async () => {
    const { bindParamsForLegacyServer } = await import("../../services/src/kit/clickhouse/legacy-binding");
    expect(bindParamsForLegacyServer("SELECT {s:String}, {n:UInt32}, {f:Float64}, {a:Array(String)}, {d:DateTime}, {z:Nullable(Int8)}", {
      s: "it's a \\ test",
      n: 42,
      f: 1.5,
      a: ["x", "y'"],
      d: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
      z: null,
    })).toBe("SELECT 'it\\'s a \\\\ test', 42, 1.5, ['x', 'y\\''], '2026-01-02 03:04:05', NULL");
    expect(() => bindParamsForLegacyServer("SELECT {n:UInt32}", { n: "1 OR 1=1" })).toThrow("expected an integer");
    expect(() => bindParamsForLegacyServer("SELECT {n:UInt32}", {})).toThrow("has no value");
  });
});
