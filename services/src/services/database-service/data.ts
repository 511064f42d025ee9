/**
 * database-service's data access: probing each datastore of its catalog entry through the kit's
 * clients (bounded by a timeout), and reading the migration tracking tables.
 */
import type { Datastore } from "../../catalog";
import { withTimeout, type ClickHouseKitClient, type Datastores, type PostgresClient } from "../../kit";
import { CLICKHOUSE_TRACKING_TABLE } from "../../migrations";
import { roundMs, type AppliedMigration, type DatastoreHealth, type DatastoreHealthMap } from "./domain";

/** Pings every listed datastore (or `only` that one) in parallel; disabled ones are reported, not pinged. */
export async function probeDatastores(
  datastores: Datastores,
  listed: { required: readonly Datastore[]; optional: readonly Datastore[] },
  timeoutMs: number,
  only?: Datastore,
): Promise<DatastoreHealthMap> {
  const all = [...listed.required.map((d) => [d, true] as const), ...listed.optional.map((d) => [d, false] as const)].filter(([d]) => !only || d === only);
  const entries = await Promise.all(
    all.map(async ([d, required]): Promise<[Datastore, DatastoreHealth]> => {
      if (!datastores.isEnabled(d)) return [d, { status: "disabled", required }];
      const t0 = performance.now();
      try {
        await withTimeout(datastores.get(d).ping(), timeoutMs, d);
        return [d, { status: "enabled", required, latencyMs: roundMs(performance.now() - t0) }];
      } catch (e) {
        return [d, { status: "failing", required, latencyMs: Math.round(performance.now() - t0), error: (e as Error).message.slice(0, 300) }];
      }
    }),
  );
  return Object.fromEntries(entries);
}

/** Rows of schema_migrations; none when the table does not exist yet (nothing applied). */
export async function appliedPostgresMigrations(pg: PostgresClient): Promise<AppliedMigration[]> {
  try {
    const { rows } = await pg.query<{ file: string; checksum: string; applied_at: Date; duration_ms: number }>(
      "SELECT file, checksum, applied_at, duration_ms FROM schema_migrations ORDER BY version, file",
    );
    return rows.map((r) => ({ file: r.file, checksum: r.checksum, appliedAt: r.applied_at, durationMs: r.duration_ms }));
  } catch (e) {
    if ((e as { code?: string }).code === "42P01") return []; // undefined_table
    throw e;
  }
}

/** Files recorded in ClickHouse's tracking table; none when it cannot be read (not created yet). */
export async function appliedClickHouseMigrations(ch: ClickHouseKitClient): Promise<string[]> {
  const rows = await ch.query<{ file: string }>(`SELECT DISTINCT file FROM ${CLICKHOUSE_TRACKING_TABLE}`).catch(() => []);
  return rows.map((r) => r.file);
}
