/**
 * database-service against real servers: PostgreSQL migration runner (idempotent, serialized,
 * checksums), ClickHouse 18.16 DDL, Kafka topics, the `migrate` command (in-process and through
 * main.ts), and the /datastores health endpoint (a killed Postgres is reported failing).
 * ArangoDB cannot run here: its declarations and adapter calls use fakes. Weaviate runs for real in
 * tests/services/weaviate.test.ts (classes, the migrate command, /datastores).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { useServers } from "../harness/shared";
import { startPostgres, pg, kafkajs, type PostgresServer } from "../harness";
import { createService, runCommand, type Service } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";
import { PATIENCE_MS } from "../helpers/patience";
import databaseService from "../../services/src/services/database-service";
import {
  runPostgresMigrations,
  runClickHouseMigrations,
  MigrationChecksumError,
  loadMigrationFiles,
  checksumOf,
  splitStatements,
  ensureKafkaTopics,
  kafkaTopics,
  ensureArango,
  arangoCollections,
  arangoGraphs,
  arangoAdapter,
  POSTGRES_MIGRATIONS_DIR,
  CLICKHOUSE_MIGRATIONS_DIR,
  type TopicSpec,
  type ArangoLike,
} from "../../services/src/migrations";
import { watchServiceWarnings } from "../harness/child-warnings";

const srv = useServers("postgres", "redis", "kafka", "clickhouse");
const quiet = { info() {}, warn() {} };

function tempMigrations(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "migr-"));
  for (const [f, sql] of Object.entries(files)) writeFileSync(join(dir, f), sql);
  return dir;
}

async function freshDb(): Promise<{ url: string; pool: import("pg").Pool }> {
  const admin = new pg.Client({ connectionString: srv.postgres.adminUrl });
  await admin.connect();
  const name = `m_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(srv.postgres.adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), pool: new pg.Pool({ connectionString: u.toString(), max: 6 }) };
}

describe("postgres migration runner", () => {
  const pools: import("pg").Pool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it("applies in filename order, once; the second run is a no-op", async () => {
    const { pool } = await freshDb();
    pools.push(pool);
    const dir = tempMigrations({
      "0002_second.sql": "INSERT INTO t (v) VALUES ('second');",
      "0001_first.sql": "CREATE TABLE t (id serial PRIMARY KEY, v text NOT NULL);\nINSERT INTO t (v) VALUES ('first');",
      "0010_third.sql": "ALTER TABLE t ADD COLUMN extra int;",
    });
    const r1 = await runPostgresMigrations(pool, { dir });
    expect(r1.applied).toEqual(["0001_first.sql", "0002_second.sql", "0010_third.sql"]);
    const r2 = await runPostgresMigrations(pool, { dir });
    expect(r2.applied).toEqual([]);
    expect(r2.alreadyApplied).toHaveLength(3);
    expect((await pool.query("SELECT v FROM t ORDER BY id")).rows.map((r) => r.v)).toEqual(["first", "second"]);
    const { rows } = await pool.query("SELECT file, length(checksum) AS n FROM schema_migrations ORDER BY file");
    expect(rows).toEqual([
      { file: "0001_first.sql", n: 64 },
      { file: "0002_second.sql", n: 64 },
      { file: "0010_third.sql", n: 64 },
    ]);
    rmSync(dir, { recursive: true });
  });

  it("runs each file in a transaction: a failing file leaves nothing behind and stops the run", async () => {
    const { pool } = await freshDb();
    pools.push(pool);
    const dir = tempMigrations({
      "0001_ok.sql": "CREATE TABLE a (id int);",
      "0002_bad.sql": "CREATE TABLE b (id int);\nINSERT INTO nope VALUES (1);",
      "0003_after.sql": "CREATE TABLE c (id int);",
    });
    await expect(runPostgresMigrations(pool, { dir })).rejects.toThrow(/0002_bad\.sql failed: relation "nope" does not exist/);
    const tables = (await pool.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.tablename);
    expect(tables).toEqual(["a", "schema_migrations"]);
    rmSync(dir, { recursive: true });
  });

  it("detects a changed applied file (checksum mismatch) and applies nothing", async () => {
    const { pool } = await freshDb();
    pools.push(pool);
    const dir = tempMigrations({ "0001_t.sql": "CREATE TABLE t (id int);" });
    await runPostgresMigrations(pool, { dir });
    writeFileSync(join(dir, "0001_t.sql"), "CREATE TABLE t (id bigint);");
    writeFileSync(join(dir, "0002_next.sql"), "CREATE TABLE t2 (id int);");
    const err = await runPostgresMigrations(pool, { dir }).catch((e) => e);
    expect(err).toBeInstanceOf(MigrationChecksumError);
    expect(err.files).toEqual(["0001_t.sql"]);
    expect((await pool.query("SELECT to_regclass('t2') AS r")).rows[0].r).toBeNull();
    // CRLF line endings (a Windows checkout) are not a change
    expect(checksumOf("CREATE TABLE t (id int);\r\nSELECT 1;\r\n")).toBe(checksumOf("CREATE TABLE t (id int);\nSELECT 1;\n"));
    rmSync(dir, { recursive: true });
  });

  it("serializes concurrent runs with the advisory lock (each file applied exactly once)", async () => {
    const { pool } = await freshDb();
    pools.push(pool);
    const dir = tempMigrations({
      "0001_slow.sql": "CREATE TABLE s (id int);\nSELECT pg_sleep(0.5);\nINSERT INTO s VALUES (1);",
      "0002_more.sql": "INSERT INTO s VALUES (2);",
    });
    const results = await Promise.all([1, 2, 3].map(() => runPostgresMigrations(pool, { dir })));
    const appliedCounts = results.map((r) => r.applied.length).sort();
    expect(appliedCounts).toEqual([0, 0, 2]);
    // The runs that applied nothing waited for the lock (how long depends on when each one's
    // connection was up: a fixed bound fails on a loaded machine).
    expect(Math.max(...results.map((r) => r.lockWaitMs))).toBeGreaterThan(0);
    expect((await pool.query("SELECT count(*)::int AS n FROM s")).rows[0].n).toBe(2);
    rmSync(dir, { recursive: true });
  });

  it("rejects badly named files", () => {
    const dir = tempMigrations({ "1_oops.sql": "SELECT 1;" });
    expect(() => loadMigrationFiles(dir)).toThrow(/does not match NNNN_lower_snake_name\.sql/);
    rmSync(dir, { recursive: true });
  });

  it("applies the repository's postgres migrations to an empty database, idempotently", async () => {
    const { pool } = await freshDb();
    pools.push(pool);
    const r1 = await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
    expect(r1.applied.length).toBe(loadMigrationFiles(POSTGRES_MIGRATIONS_DIR).length);
    expect(r1.applied).toContain("0010_configuration_service.sql");
    const r2 = await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
    expect(r2.applied).toEqual([]);
  });
});

describe("clickhouse migrations (real 18.16 server: DDL only)", () => {
  it("creates the repository's tables, tracks them, second run is a no-op, adds a missing column, detects changes", async () => {
    const ch = createClickHouse({
      CLICKHOUSE_URL: srv.clickhouse.url,
      CLICKHOUSE_USER: srv.clickhouse.user,
      CLICKHOUSE_PASSWORD: srv.clickhouse.password,
      CLICKHOUSE_DATABASE: srv.clickhouse.database,
    });
    try {
      const r1 = await runClickHouseMigrations(ch, { dir: CLICKHOUSE_MIGRATIONS_DIR });
      expect(r1.applied).toEqual(loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR).map((f) => f.file));
      const tables = (
        await ch.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${srv.clickhouse.database}' ORDER BY name`)
      ).map((t) => t.name);
      // Every table (and materialized view) the folder declares exists, and nothing else (read from the files, so a new
      // migration is covered without editing this list; the list was stale twice when branches met).
      const declared = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR).flatMap((f) =>
        [...f.sql.matchAll(/CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS\s+([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]),
      );
      expect(declared).toEqual(expect.arrayContaining(["market_candles", "trade_events", "usage_events"]));
      expect(tables).toEqual([...new Set([...declared, "schema_migrations"])].sort());
      const r2 = await runClickHouseMigrations(ch, { dir: CLICKHOUSE_MIGRATIONS_DIR });
      expect(r2.applied).toEqual([]);
      // a row round-trips (JSONEachRow insert, no query parameters: 18.16 has none)
      await ch.insert("market_candles", [
        { symbol: "BTCUSDT", timeframe: "1m", open_time: "2026-01-01 00:00:00", open: 1, high: 2, low: 0.5, close: 1.5, volume: 10, trades: 3, source: "test" },
      ]);
      expect(await ch.query("SELECT symbol, close FROM market_candles")).toEqual([{ symbol: "BTCUSDT", close: 1.5 }]);

      const dir = tempMigrations({ "0001_x.sql": "CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = MergeTree ORDER BY a;\nCREATE TABLE IF NOT EXISTS y (a UInt8) ENGINE = Memory;" });
      const db2 = `t_${Math.random().toString(36).slice(2, 8)}`;
      await ch.command(`CREATE DATABASE ${db2}`);
      const ch2 = createClickHouse({
        CLICKHOUSE_URL: srv.clickhouse.url,
        CLICKHOUSE_USER: srv.clickhouse.user,
        CLICKHOUSE_PASSWORD: srv.clickhouse.password,
        CLICKHOUSE_DATABASE: db2,
      });
      expect((await runClickHouseMigrations(ch2, { dir })).applied).toEqual(["0001_x.sql"]);
      // ADD COLUMN IF NOT EXISTS, which 18.16 does not parse: the runner adds a missing column, and a file re-run after its ALTER (here its twin) passes.
      writeFileSync(join(dir, "0002_y.sql"), "ALTER TABLE x ADD COLUMN IF NOT EXISTS b String DEFAULT 'none';\nALTER TABLE x ADD COLUMN  if not exists b String DEFAULT 'none';");
      expect((await runClickHouseMigrations(ch2, { dir })).applied).toEqual(["0002_y.sql"]);
      expect(await ch2.query(`SELECT name, default_expression AS d FROM system.columns WHERE database = '${db2}' AND table = 'x' ORDER BY name`)).toEqual([{ name: "a", d: "" }, { name: "b", d: "'none'" }]);
      writeFileSync(join(dir, "0001_x.sql"), "CREATE TABLE IF NOT EXISTS x (a UInt16) ENGINE = MergeTree ORDER BY a;");
      await expect(runClickHouseMigrations(ch2, { dir })).rejects.toBeInstanceOf(MigrationChecksumError);
      await ch2.close();
      rmSync(dir, { recursive: true });
    } finally {
      await ch.close();
    }
  });

  it("splits files into statements at line-ending semicolons", () => {
    expect(splitStatements("-- c\nCREATE TABLE a (x String DEFAULT ';');\n\n-- only a comment;\nSELECT 1;")).toEqual([
      "CREATE TABLE a (x String DEFAULT ';')",
      "SELECT 1",
    ]);
  });
});

describe("kafka topics (real broker)", () => {
  // A broker applies a config change after answering alterConfigs (KRaft: once the metadata record reaches it),
  // so a describeConfigs right after may still show the old values: reads wait, bounded, for the expected state.
  const settled = (check: () => Promise<void>) => vi.waitFor(check, { timeout: PATIENCE_MS, interval: 100 });
  it("creates missing topics with their config, is idempotent, grows partitions", async () => {
    const kafka = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING, clientId: "t" });
    const admin = kafka.admin();
    await admin.connect();
    const p = `t${Date.now().toString(36)}.`;
    const specs: TopicSpec[] = [
      { name: `${p}events`, partitions: 2, replicationFactor: 3, cleanupPolicy: "delete", retentionMs: 3_600_000, segmentMs: 600_000, description: "" },
      { name: `${p}state`, partitions: 1, replicationFactor: 3, cleanupPolicy: "compact", description: "" },
    ];
    try {
      const r1 = await ensureKafkaTopics(admin, specs);
      expect(r1.created).toEqual(specs.map((s) => s.name));
      expect(r1.replicationFactor).toBe(1); // capped to the single test broker
      const md = await admin.fetchTopicMetadata({ topics: [specs[0].name] });
      expect(md.topics[0].partitions).toHaveLength(2);
      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: specs.map((s) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name: s.name, configNames: ["cleanup.policy", "retention.ms", "segment.ms"] })),
      });
      const val = (topic: string, key: string) =>
        cfg.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === key)!.configValue;
      expect(val(specs[0].name, "retention.ms")).toBe("3600000");
      expect(val(specs[0].name, "segment.ms")).toBe("600000");
      expect(val(specs[1].name, "cleanup.policy")).toBe("compact");

      const r2 = await ensureKafkaTopics(admin, specs);
      expect(r2.created).toEqual([]);
      expect(r2.existing).toEqual(specs.map((s) => s.name));
      expect(r2.configsUpdated).toEqual([]);

      const r3 = await ensureKafkaTopics(admin, [{ ...specs[0], partitions: 4 }]);
      expect(r3.partitionsAdded).toEqual([specs[0].name]);
      // ensureKafkaTopics returns once the broker's metadata shows the new partitions with leaders:
      // .ci/run of session 45 at load 10-19 read 2 here when it returned on createPartitions' answer.
      expect((await admin.fetchTopicMetadata({ topics: [specs[0].name] })).topics[0].partitions).toHaveLength(4);
    } finally {
      await admin.disconnect();
    }
  });

  it("a topic created before segment.ms was declared gets the declared configs on the next run, once", async () => {
    const kafka = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING, clientId: "t" });
    const admin = kafka.admin();
    await admin.connect();
    const name = `t${Date.now().toString(36)}.executions`;
    const declared = kafkaTopics.find((t) => t.name === "trading.executions")!;
    const spec: TopicSpec = { ...declared, name };
    const configs = async () => {
      const d = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ["retention.ms", "segment.ms"] }],
      });
      return Object.fromEntries(d.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
    };
    try {
      // What the migration created before: cleanup.policy and retention.ms only, the roll left to the broker.
      await createTopicsReady(admin, [
        { topic: name, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: "cleanup.policy", value: "delete" }, { name: "retention.ms", value: String(declared.retentionMs) }] },
      ]);
      expect((await configs())["segment.ms"]).toBe("604800000"); // Apache Kafka's default (log.roll.hours 168)

      const r1 = await ensureKafkaTopics(admin, [spec]);
      expect(r1).toMatchObject({ created: [], existing: [name], configsUpdated: [name] });
      await settled(async () => expect(await configs()).toEqual({ "retention.ms": String(declared.retentionMs), "segment.ms": String(declared.segmentMs) }));

      // Up to date: nothing written. Changed by hand: brought back.
      expect((await ensureKafkaTopics(admin, [spec])).configsUpdated).toEqual([]);
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name, configEntries: [{ name: "cleanup.policy", value: "delete" }, { name: "retention.ms", value: "60000" }] }],
      });
      await settled(async () => expect((await configs())["retention.ms"]).toBe("60000"));
      expect((await ensureKafkaTopics(admin, [spec])).configsUpdated).toEqual([name]);
      await settled(async () => expect(await configs()).toEqual({ "retention.ms": String(declared.retentionMs), "segment.ms": String(declared.segmentMs) }));
    } finally {
      await admin.deleteTopics({ topics: [name] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("a drifted topic keeps the configs set on it by hand that are not declared; only declared keys change", async () => {
    const kafka = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING, clientId: "t" });
    const admin = kafka.admin();
    await admin.connect();
    const name = `t${Date.now().toString(36)}.handset`;
    const declared = kafkaTopics.find((t) => t.name === "trading.orders")!;
    const spec: TopicSpec = { ...declared, name };
    const own = async () => {
      const d = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name }] });
      return Object.fromEntries(
        d.resources[0].configEntries.filter((e) => e.configSource === kafkajs.ConfigSource.TOPIC_CONFIG).map((e) => [e.configName, e.configValue]),
      );
    };
    try {
      // An operator's settings the platform does not declare, and a declared key drifted (retention cut to a minute).
      const handSet = { "max.message.bytes": "2097152", "compression.type": "zstd" };
      await createTopicsReady(admin, [
        { topic: name, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: "cleanup.policy", value: "delete" }, { name: "retention.ms", value: "60000" }, ...Object.entries(handSet).map(([n, value]) => ({ name: n, value }))] },
      ]);
      await settled(async () => expect(await own()).toEqual({ "cleanup.policy": "delete", "retention.ms": "60000", ...handSet }));

      expect((await ensureKafkaTopics(admin, [spec])).configsUpdated).toEqual([name]);
      await settled(async () =>
        expect(await own()).toEqual({
          ...handSet,
          "cleanup.policy": "delete",
          "retention.ms": String(declared.retentionMs),
          "segment.ms": String(declared.segmentMs),
        }),
      );
      expect((await ensureKafkaTopics(admin, [spec])).configsUpdated).toEqual([]);
    } finally {
      await admin.deleteTopics({ topics: [name] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("declares every platform topic once with sane settings", () => {
    const names = kafkaTopics.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const t of kafkaTopics) {
      expect(t.name).toMatch(/^[a-z]+(\.[a-z]+)+$/);
      expect(t.partitions).toBeGreaterThanOrEqual(1);
      expect(t.replicationFactor).toBe(3);
      if (t.cleanupPolicy === "delete") expect(t.retentionMs).toBeGreaterThan(0);
    }
    expect(names).toEqual(expect.arrayContaining(["market.candles", "trading.orders", "trading.executions", "compliance.alerts", "config.changes"]));
  });
});

describe("arangodb declarations (fake clients: no ArangoDB server can run here)", () => {
  it("creates only missing collections and graphs, edge collections as edges", async () => {
    const calls: string[] = [];
    const fake: ArangoLike = {
      listCollections: async () => ["assets"],
      createCollection: async (n, t) => void calls.push(`col:${n}:${t}`),
      listGraphs: async () => [],
      createGraph: async (n, defs) => void calls.push(`graph:${n}:${defs.map((d) => d.collection).join(",")}`),
    };
    const r = await ensureArango(fake);
    expect(r.createdCollections).toEqual(arangoCollections.filter((c) => c.name !== "assets").map((c) => c.name));
    expect(calls).toContain("col:correlated_with:edge");
    expect(calls).toContain("col:strategies:document");
    expect(calls).toContain("graph:market_graph:correlated_with,mentions,trades_asset");
    await expect(ensureArango(fake, [{ name: "a", type: "document" }], [{ name: "g", edgeDefinitions: [{ collection: "a", from: ["a"], to: ["a"] }] }])).rejects.toThrow(
      /a must be a declared edge collection/,
    );
  });

  it("maps onto arangojs calls", async () => {
    const calls: unknown[][] = [];
    const db = {
      collections: async (excludeSystem: boolean) => (calls.push(["collections", excludeSystem]), [{ name: "x" }]),
      createCollection: async (n: string) => void calls.push(["createCollection", n]),
      createEdgeCollection: async (n: string) => void calls.push(["createEdgeCollection", n]),
      graphs: async () => [{ name: "g" }],
      createGraph: async (n: string, defs: unknown) => void calls.push(["createGraph", n, defs]),
    };
    const a = arangoAdapter(db as never);
    expect(await a.listCollections()).toEqual(["x"]);
    await a.createCollection("e", "edge");
    await a.createCollection("d", "document");
    expect(await a.listGraphs()).toEqual(["g"]);
    await a.createGraph("g2", arangoGraphs[0].edgeDefinitions);
    expect(calls).toEqual([
      ["collections", true],
      ["createEdgeCollection", "e"],
      ["createCollection", "d"],
      ["createGraph", "g2", arangoGraphs[0].edgeDefinitions],
    ]);
  });
});

/** The identity the gateway sends for an admin (the routes are admin-only). */
const ADMIN = { "x-user-id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", "x-user-role": "admin", "x-auth-method": "jwt" };

describe("migrate command and /datastores endpoint", () => {
  let privatePg: PostgresServer;
  let svc: Service;
  let base: string;
  const env = () => ({
    LOG_LEVEL: "silent",
    ...srv.env,
    POSTGRES_URL: privatePg.url,
    // A bound, not a speed target: first connections on a loaded machine take seconds, and a killed
    // server is refused at once, so a generous bound keeps the test independent of load.
    DATASTORE_CHECK_TIMEOUT_MS: "30000",
  });

  beforeAll(async () => {
    privatePg = await startPostgres();
  });
  afterAll(async () => {
    await svc?.close();
    await privatePg?.stop();
  });

  it("migrate runs every enabled datastore once and exits 0; a second run is a no-op", async () => {
    const e = env();
    expect(await runCommand(databaseService, "migrate", [], { env: e, defaultMetrics: false })).toBe(0);
    const rows = await privatePg.query<{ file: string }>("SELECT file FROM schema_migrations ORDER BY file");
    expect(rows.map((r) => r.file)).toEqual(loadMigrationFiles(POSTGRES_MIGRATIONS_DIR).map((f) => f.file));
    expect(await runCommand(databaseService, "migrate", [], { env: e, defaultMetrics: false })).toBe(0);
    const kafka = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    expect(await admin.listTopics()).toEqual(expect.arrayContaining(kafkaTopics.map((t) => t.name)));
    await admin.disconnect();
  });

  it("`main.ts database-service migrate` exits 0, and 1 when postgres is unreachable", { timeout: 600_000 }, async () => {
    const run = (extra: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [join(__dirname, "..", "..", "node_modules", "tsx", "dist", "cli.mjs"), join(__dirname, "..", "..", "services", "src", "main.ts"), "database-service", "migrate"], {
          env: { PATH: process.env.PATH, ...env(), LOG_LEVEL: "info", ...extra },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (out += d));
        watchServiceWarnings("database-service migrate", p.stderr);
        p.on("exit", (code) => resolve({ code, out }));
      });
    const ok = await run({});
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain("migrations complete");
    const bad = await run({ POSTGRES_URL: privatePg.url.replace(/:\d+\//, ":1/") });
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("migrations failed");
  });

  it("reports each datastore enabled/disabled with latency, then a killed postgres as failing", async () => {
    svc = await createService(databaseService, { env: env(), defaultMetrics: false });
    base = await svc.listen({ port: 0, host: "127.0.0.1" });
    // A trader learns nothing: the probes' errors name internal addresses.
    for (const path of ["/datastores", "/datastores/postgres", "/migrations"]) {
      expect((await fetch(`${base}${path}`, { headers: { ...ADMIN, "x-user-role": "trader", "x-auth-method": "jwt" } })).status, path).toBe(403);
    }
    const r1 = await fetch(`${base}/datastores`, { headers: ADMIN });
    const b1 = await r1.json();
    expect(r1.status, JSON.stringify(b1)).toBe(200);
    expect(b1.status).toBe("ok");
    for (const d of ["postgres", "dragonfly", "clickhouse", "redpanda"]) {
      expect(b1.datastores[d].status, d).toBe("enabled");
      expect(b1.datastores[d].latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(b1.datastores.arangodb).toEqual({ status: "disabled", required: false });
    expect(b1.datastores.weaviate).toEqual({ status: "disabled", required: false });
    const one = await (await fetch(`${base}/datastores/clickhouse`, { headers: ADMIN })).json();
    expect(one).toMatchObject({ name: "clickhouse", status: "enabled" });
    expect((await fetch(`${base}/datastores/mysql`, { headers: ADMIN })).status).toBe(404);
    const mig = await (await fetch(`${base}/migrations`, { headers: ADMIN })).json();
    expect(mig.postgres.pending).toEqual([]);
    expect(mig.postgres.applied.every((a: { checksumMatches: boolean }) => a.checksumMatches)).toBe(true);
    expect(mig.clickhouse.pending).toEqual([]);

    await privatePg.kill();
    const r2 = await fetch(`${base}/datastores`, { headers: ADMIN });
    expect(r2.status).toBe(503);
    const b2 = await r2.json();
    expect(b2.status).toBe("failing");
    expect(b2.datastores.postgres.status).toBe("failing");
    expect(b2.datastores.postgres.error).toBeTruthy();
    expect(b2.datastores.dragonfly.status).toBe("enabled");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/datastore_probe_latency_ms\{[^}]*datastore="postgres"[^}]*\} -1/);

    await privatePg.restart();
    await vi.waitFor(async () => {
      const b3 = (await (await fetch(`${base}/datastores`, { headers: ADMIN })).json()) as { datastores: { postgres: { status: string } } };
      expect(b3.datastores.postgres.status).toBe("enabled");
    }, { timeout: 60_000, interval: 250 });
  });
});
