/** Migration files on disk: `NNNN_name.sql`, ordered by number then name, with a SHA-256 checksum. */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

export const MIGRATION_FILE = /^(\d{4,})_([a-z0-9][a-z0-9_]*)\.sql$/;

export interface MigrationFile {
  /** File name, e.g. `0100_user_management.sql`; the identity of a migration. */
  file: string;
  version: number;
  sql: string;
  checksum: string;
  /** First line `-- migrate:no-transaction` (e.g. CREATE INDEX CONCURRENTLY). */
  noTransaction: boolean;
}

/** Checksum of the file with line endings normalised (a CRLF checkout is not a change). */
export function checksumOf(sql: string): string {
  return createHash("sha256").update(sql.replace(/\r\n/g, "\n")).digest("hex");
}

export function loadMigrationFiles(dir: string): MigrationFile[] {
  if (!existsSync(dir)) return [];
  const out: MigrationFile[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".sql")) continue;
    const m = MIGRATION_FILE.exec(file);
    if (!m) throw new Error(`migration file ${file} in ${dir} does not match NNNN_lower_snake_name.sql`);
    const sql = readFileSync(join(dir, file), "utf8");
    out.push({
      file,
      version: Number(m[1]),
      sql,
      checksum: checksumOf(sql),
      noTransaction: /^\s*--\s*migrate:no-transaction\b/.test(sql),
    });
  }
  out.sort((a, b) => a.version - b.version || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  // Two files with one number are two changes that were written without seeing each other (two
  // branches landing at once): their order is then an accident of naming, so refuse it here.
  for (let i = 1; i < out.length; i++) {
    if (out[i].version === out[i - 1].version) {
      throw new Error(
        `migration files ${out[i - 1].file} and ${out[i].file} in ${dir} share the number ${out[i].version}: renumber the newer one`,
      );
    }
  }
  return out;
}

/** Default locations: next to this module (src/ when run with tsx, dist/ after build copies them). */
export const POSTGRES_MIGRATIONS_DIR = join(__dirname, "postgres");
export const CLICKHOUSE_MIGRATIONS_DIR = join(__dirname, "clickhouse");

/** Splits a ClickHouse file into statements at `;` ending a line (the HTTP API takes one statement per request). */
export function splitStatements(sql: string): string[] {
  return sql
    .replace(/\r\n/g, "\n")
    .split(/;[ \t]*(?:\n|$)/)
    .map((s) => s.replace(/^(\s*--[^\n]*\n)+/g, "").trim())
    .filter((s) => s.replace(/--[^\n]*/g, "").trim().length > 0);
}
