/**
 * A ClickHouse database of a test file's own on the shared server, every migration applied: for
 * tests that drop partitions or count a table's mutations, which other files' rows would disturb.
 * Registers beforeAll/afterAll (the database is dropped after the file); read `ch` inside tests.
 */
import { afterAll, beforeAll } from "vitest";
import { createClickHouse } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";
import type { Servers } from "./shared";

export function useMigratedClickHouse(srv: Pick<Servers, "clickhouse">, prefix: string): { ch: ReturnType<typeof createClickHouse> } {
  const own = {} as { ch: ReturnType<typeof createClickHouse> };
  let root: ReturnType<typeof createClickHouse> | undefined;
  const db = `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
  beforeAll(async () => {
    root = createClickHouse(srv.clickhouse.env);
    await root.command(`CREATE DATABASE ${db}`);
    own.ch = createClickHouse({ ...srv.clickhouse.env, CLICKHOUSE_DATABASE: db });
    await runClickHouseMigrations(own.ch);
  }, 300_000);
  afterAll(async () => {
    await own.ch?.close();
    await root?.command(`DROP DATABASE IF EXISTS ${db}`);
    await root?.close();
  });
  return own;
}
