import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLICKHOUSE_MIGRATIONS_DIR,
  POSTGRES_MIGRATIONS_DIR,
  loadMigrationFiles,
} from "../../services/src/migrations/files";

describe("migration files", () => {
  it.each([
    ["postgres", POSTGRES_MIGRATIONS_DIR],
    ["clickhouse", CLICKHOUSE_MIGRATIONS_DIR],
  ])("the %s folder loads: names valid, one file per number", (_store, dir) => {
    const files = loadMigrationFiles(dir);
    expect(files.length).toBeGreaterThan(0);
    expect(new Set(files.map((f) => f.version)).size).toBe(files.length);
  });

  it("refuses two files sharing a number, naming both", () => {
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    writeFileSync(join(dir, "0005_a.sql"), "SELECT 1;\n");
    writeFileSync(join(dir, "0005_b.sql"), "SELECT 2;\n");
    expect(() => loadMigrationFiles(dir)).toThrow(/0005_a\.sql and 0005_b\.sql .*share the number 5/);
  });
});
