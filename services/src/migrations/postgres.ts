/**
 * PostgreSQL migration runner: applies `postgres/NNNN_*.sql` in order, each file in its own
 * transaction, under a session advisory lock, recording each in `schema_migrations` with its
 * SHA-256 checksum. An applied file whose content changed is an error (fix forward with a new file).
 *
 * Hand-written rather than node-pg-migrate: node-pg-migrate takes an advisory lock and runs SQL
 * files, but it records only names (no checksum verification of applied files), wants its own
 * `-- Up Migration` markers in every SQL file, and adds a CLI/dependency for ~100 lines of logic.
 */
import type { Pool, PoolClient } from "pg";
import { loadMigrationFiles, POSTGRES_MIGRATIONS_DIR, type MigrationFile } from "./files";

/** Key of the advisory lock (any bigint constant; "migr" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x6d696772;

export interface MigrationLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}
const silent: MigrationLog = { info() {}, warn() {} };

export interface PostgresMigrationResult {
  applied: string[];
  alreadyApplied: string[];
  /** Rows of schema_migrations with no file any more (reported, not an error). */
  unknownApplied: string[];
  lockWaitMs: number;
}

export class MigrationChecksumError extends Error {
  constructor(readonly files: string[]) {
    super(`applied migration(s) changed on disk (checksum mismatch): ${files.join(", ")}; add a new migration instead of editing an applied one`);
    this.name = "MigrationChecksumError";
  }
}

const ENSURE_TABLE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  file        text PRIMARY KEY,
  version     integer NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
)`;

async function withLock<T>(client: PoolClient, lockTimeoutMs: number, fn: () => Promise<T>): Promise<{ result: T; waitMs: number }> {
  const t0 = Date.now();
  // lock_timeout bounds the wait for the advisory lock (another runner applying migrations).
  await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
  await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
  const waitMs = Date.now() - t0;
  await client.query("SET lock_timeout = 0");
  try {
    return { result: await fn(), waitMs };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
  }
}

async function applyOne(client: PoolClient, m: MigrationFile): Promise<void> {
  const t0 = Date.now();
  const record = "INSERT INTO schema_migrations (file, version, checksum, duration_ms) VALUES ($1, $2, $3, $4)";
  if (m.noTransaction) {
    await client.query(m.sql);
    await client.query(record, [m.file, m.version, m.checksum, Date.now() - t0]);
    return;
  }
  await client.query("BEGIN");
  try {
    await client.query(m.sql); // simple query protocol: a file may hold many statements
    await client.query(record, [m.file, m.version, m.checksum, Date.now() - t0]);
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    const err = e as Error & { position?: string };
    throw new Error(`migration ${m.file} failed: ${err.message}${err.position ? ` (at character ${err.position})` : ""}`);
  }
}

export async function runPostgresMigrations(
  pool: Pool,
  opts: { dir?: string; log?: MigrationLog; lockTimeoutMs?: number; files?: MigrationFile[] } = {},
): Promise<PostgresMigrationResult> {
  const log = opts.log ?? silent;
  const files = opts.files ?? loadMigrationFiles(opts.dir ?? POSTGRES_MIGRATIONS_DIR);
  const client = await pool.connect();
  let broken = false;
  try {
    const { result, waitMs } = await withLock(client, opts.lockTimeoutMs ?? 120_000, async () => {
      await client.query(ENSURE_TABLE);
      const { rows } = await client.query<{ file: string; checksum: string }>("SELECT file, checksum FROM schema_migrations");
      const applied = new Map(rows.map((r) => [r.file, r.checksum]));
      const changed = files.filter((f) => applied.has(f.file) && applied.get(f.file) !== f.checksum).map((f) => f.file);
      if (changed.length) throw new MigrationChecksumError(changed);
      const onDisk = new Set(files.map((f) => f.file));
      const unknownApplied = rows.map((r) => r.file).filter((f) => !onDisk.has(f));
      if (unknownApplied.length) log.warn({ files: unknownApplied }, "applied migrations without a file");
      const pending = files.filter((f) => !applied.has(f.file));
      const maxApplied = Math.max(0, ...files.filter((f) => applied.has(f.file)).map((f) => f.version));
      const done: string[] = [];
      for (const m of pending) {
        if (m.version < maxApplied) log.warn({ file: m.file }, "applying a migration numbered below an applied one (added out of order)");
        await applyOne(client, m);
        log.info({ file: m.file }, "postgres migration applied");
        done.push(m.file);
      }
      return { applied: done, alreadyApplied: files.filter((f) => applied.has(f.file)).map((f) => f.file), unknownApplied };
    });
    return { ...result, lockWaitMs: waitMs };
  } catch (e) {
    broken = true; // session settings / lock state unknown: do not return this connection to the pool
    throw e;
  } finally {
    client.release(broken);
  }
}
