/**
 * database-service's HTTP routes:
 *   GET /datastores          each catalog datastore: enabled | disabled | failing, latency ms (503 when a required one fails)
 *   GET /datastores/:name    one of them
 *   GET /migrations          applied PostgreSQL / ClickHouse migrations and pending files
 */
import type { Datastore } from "../../catalog";
import { notFound, Type, type App } from "../../kit";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, POSTGRES_MIGRATIONS_DIR } from "../../migrations";
import { appliedClickHouseMigrations, appliedPostgresMigrations } from "./data";
import { clickhouseMigrationStatus, postgresMigrationStatus, type DatastoreReport } from "./domain";

export function registerRoutes(app: App, deps: { known: readonly Datastore[]; report: (only?: Datastore) => Promise<DatastoreReport> }): void {
  const { known, report } = deps;
  const isKnown = (name: string): name is Datastore => (known as readonly string[]).includes(name);

  app.get("/datastores", async (_req, reply) => {
    const r = await report();
    return reply.status(r.status === "failing" ? 503 : 200).send(r);
  });

  app.get("/datastores/:name", { schema: { params: Type.Object({ name: Type.String({ maxLength: 32 }) }) } }, async (req, reply) => {
    const name = req.params.name;
    if (!isKnown(name)) throw notFound(`Unknown datastore ${name} (known: ${known.join(", ")})`);
    const health = (await report(name)).datastores[name];
    if (!health) throw notFound(`Unknown datastore ${name} (known: ${known.join(", ")})`);
    return reply.status(health.status === "failing" ? 503 : 200).send({ name, ...health });
  });

  app.get("/migrations", async () => {
    const postgres = postgresMigrationStatus(await appliedPostgresMigrations(app.pg), loadMigrationFiles(POSTGRES_MIGRATIONS_DIR));
    const clickhouse = app.datastores.isEnabled("clickhouse")
      ? clickhouseMigrationStatus(await appliedClickHouseMigrations(app.clickhouse), loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR))
      : "disabled";
    return { postgres, clickhouse };
  });
}
