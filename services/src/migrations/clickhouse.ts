/**
 * ClickHouse table definitions: `clickhouse/NNNN_*.sql` applied in order, statement by statement
 * (the HTTP interface takes one statement per request), tracked in a `schema_migrations` table of
 * the target database with checksums. ClickHouse has no transactions: write every statement
 * idempotently (`CREATE TABLE IF NOT EXISTS`), so a file interrupted half-way can be re-run.
 * Concurrency: `migrate` holds the PostgreSQL advisory lock while it runs this (see index.ts).
 *
 * Written for the oldest server we meet (Debian's 18.16): no query parameters, no TTL, no
 * DateTime64, no LowCardinality (experimental there), no CODEC — see the files. Nor `ADD COLUMN IF NOT
 * EXISTS`: the runner does it (runStatement), one column per ALTER.
 */
import { clickhouseDateTime } from "../kit/clickhouse/client";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, splitStatements, type MigrationFile } from "./files";
import { MigrationChecksumError, type MigrationLog } from "./postgres";

/** What the runner needs of a ClickHouse client (the kit's client fits). */
export interface ClickHouseLike {
  command(sql: string): Promise<unknown>;
  query<T>(sql: string): Promise<T[]>;
  insert<T>(table: string, rows: T[]): Promise<unknown>;
}

export const CLICKHOUSE_TRACKING_TABLE = "schema_migrations";

const ENSURE_TABLE = `CREATE TABLE IF NOT EXISTS ${CLICKHOUSE_TRACKING_TABLE} (
  file String,
  version UInt32,
  checksum String,
  applied_at DateTime
) ENGINE = MergeTree ORDER BY file`;

export interface ClickHouseMigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

export async function runClickHouseMigrations(
  ch: ClickHouseLike,
  opts: { dir?: string; log?: MigrationLog; files?: MigrationFile[] } = {},
): Promise<ClickHouseMigrationResult> {
  const files = opts.files ?? loadMigrationFiles(opts.dir ?? CLICKHOUSE_MIGRATIONS_DIR);
  await ch.command(ENSURE_TABLE);
  const rows = await ch.query<{ file: string; checksum: string }>(
    `SELECT file, any(checksum) AS checksum FROM ${CLICKHOUSE_TRACKING_TABLE} GROUP BY file`,
  );
  const applied = new Map(rows.map((r) => [r.file, r.checksum]));
  const changed = files.filter((f) => applied.has(f.file) && applied.get(f.file) !== f.checksum).map((f) => f.file);
  if (changed.length) throw new MigrationChecksumError(changed);
  const done: string[] = [];
  for (const m of files.filter((f) => !applied.has(f.file))) {
    for (const [i, stmt] of splitStatements(m.sql).entries()) {
      try {
        await runStatement(ch, stmt);
      } catch (e) {
        throw new Error(`clickhouse migration ${m.file} statement ${i + 1} failed: ${(e as Error).message}`);
      }
    }
    await ch.insert(CLICKHOUSE_TRACKING_TABLE, [{ file: m.file, version: m.version, checksum: m.checksum, applied_at: clickhouseDateTime(Date.now()) }]);
    opts.log?.info({ file: m.file }, "clickhouse migration applied");
    done.push(m.file);
  }
  return { applied: done, alreadyApplied: files.filter((f) => applied.has(f.file)).map((f) => f.file) };
}

/**
 * `ALTER TABLE t ADD COLUMN IF NOT EXISTS c ...` (one column): 18.16 refuses the words (a syntax error),
 * so the statement runs without them, and only when system.columns has no column `c` in `t` (a file
 * interrupted after its ALTER, before it was tracked, is re-run without failing). Any other statement
 * runs as written.
 */
const ADD_COLUMN_IF_MISSING = /^ALTER TABLE\s+([A-Za-z_]\w*)\s+ADD COLUMN\s+IF NOT EXISTS\s+([A-Za-z_]\w*)\s/i;

async function runStatement(ch: ClickHouseLike, stmt: string): Promise<void> {
  const add = ADD_COLUMN_IF_MISSING.exec(stmt);
  if (!add) {
    await ch.command(stmt);
    return;
  }
  const [, table, column] = add;
  const found = await ch.query<{ n: number | string }>(
    `SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND table = '${table}' AND name = '${column}'`,
  );
  if (Number(found[0]?.n ?? 0) === 0) await ch.command(stmt.replace(/\s+IF NOT EXISTS\s+/i, " "));
}
