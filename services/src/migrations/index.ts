/**
 * `database-service migrate`: every datastore's schema, once, in order:
 *   PostgreSQL (files, advisory lock, checksums) -> ClickHouse (files) -> Kafka topics ->
 *   ArangoDB collections/graphs -> Weaviate classes.
 * The whole run holds a second PostgreSQL advisory lock so two concurrent `migrate` jobs (e.g. a
 * re-run Kubernetes Job) also serialize on the non-transactional stores. Disabled datastores
 * (variables absent) are skipped and reported as such.
 */
import type { Datastores } from "../kit";
import type { MigrationLog } from "./postgres";
import { runPostgresMigrations, type PostgresMigrationResult } from "./postgres";
import { runClickHouseMigrations, type ClickHouseMigrationResult } from "./clickhouse";
import { ensureKafkaTopics, type KafkaTopicsResult } from "./kafka";
import { arangoAdapter, ensureArango } from "./arango";
import { ensureWeaviate, weaviateAdapter } from "./weaviate";

export * from "./files";
export * from "./postgres";
export * from "./clickhouse";
export * from "./kafka";
export * from "./arango";
export * from "./weaviate";

/** Advisory lock held for a whole `migrate` run ("migR"). */
export const MIGRATE_RUN_LOCK_KEY = 0x6d696752;

export interface MigrateOptions {
  postgresDir?: string;
  clickhouseDir?: string;
  lockTimeoutMs?: number;
}

export interface MigrateReport {
  postgres: PostgresMigrationResult;
  clickhouse: ClickHouseMigrationResult | "disabled";
  kafka: KafkaTopicsResult | "disabled";
  arangodb: { createdCollections: string[]; createdGraphs: string[] } | "disabled";
  weaviate: { created: string[] } | "disabled";
  durationMs: number;
}

export async function migrateAll(ds: Datastores, log: MigrationLog, opts: MigrateOptions = {}): Promise<MigrateReport> {
  const t0 = Date.now();
  const pg = ds.get("postgres");
  const runLock = await pg.pool.connect();
  let broken = false;
  try {
    await runLock.query(`SET lock_timeout = ${Math.floor(opts.lockTimeoutMs ?? 300_000)}`);
    await runLock.query("SELECT pg_advisory_lock($1)", [MIGRATE_RUN_LOCK_KEY]);
    await runLock.query("SET lock_timeout = 0");
    try {
      const postgres = await runPostgresMigrations(pg.pool, { dir: opts.postgresDir, log, lockTimeoutMs: opts.lockTimeoutMs });
      const clickhouse = ds.isEnabled("clickhouse")
        ? await runClickHouseMigrations(ds.get("clickhouse"), { dir: opts.clickhouseDir, log })
        : "disabled";
      let kafka: MigrateReport["kafka"] = "disabled";
      if (ds.isEnabled("redpanda")) {
        const admin = ds.get("redpanda").kafka.admin();
        await admin.connect();
        try {
          kafka = await ensureKafkaTopics(admin, undefined, { log });
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      }
      const arangodb = ds.isEnabled("arangodb") ? await ensureArango(arangoAdapter(ds.get("arangodb").db)) : "disabled";
      const weaviate = ds.isEnabled("weaviate") ? await ensureWeaviate(weaviateAdapter(await ds.get("weaviate").client())) : "disabled";
      return { postgres, clickhouse, kafka, arangodb, weaviate, durationMs: Date.now() - t0 };
    } finally {
      await runLock.query("SELECT pg_advisory_unlock($1)", [MIGRATE_RUN_LOCK_KEY]).catch(() => (broken = true));
    }
  } catch (e) {
    broken = true;
    throw e;
  } finally {
    runLock.release(broken);
  }
}
