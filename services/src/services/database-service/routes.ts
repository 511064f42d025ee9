/**
 * database-service's HTTP routes:
 *   GET /datastores          each catalog datastore: enabled | disabled | failing, latency ms (503 when a required one fails)
 *   GET /datastores/:name    one of them
 *   GET /migrations          applied PostgreSQL / ClickHouse migrations and pending files
 * All for admins: the probes' errors name internal addresses, and each call pings every datastore.
 */
import type { Datastore } from "../../catalog";
import { notFound, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, POSTGRES_MIGRATIONS_DIR } from "../../migrations";
import { appliedClickHouseMigrations, appliedPostgresMigrations } from "./data";
import { clickhouseMigrationStatus, postgresMigrationStatus, type DatastoreReport } from "./domain";

// Responses (OpenAPI; unnamed fields are kept).
const Health = ResponseObject({ status: Type.String({ description: "enabled | disabled | failing" }), required: Type.Boolean(), latencyMs: Type.Optional(Type.Number()), error: Type.Optional(Type.String()) });
const Report = ResponseObject({ status: Type.String({ description: "ok | degraded | failing" }), checkedAt: Type.String(), datastores: Type.Record(Type.String(), Health) });
const One = Type.Intersect([ResponseObject({ name: Type.String() }), Health]);
const Migrations = ResponseObject(
  {
    postgres: ResponseObject(
      { applied: Type.Array(ResponseObject({ file: Type.String(), checksumMatches: Type.Boolean() })), pending: Type.Array(Type.String()) },
      { description: "the transactional store's applied migrations and pending files" },
    ),
    // The public document names no datastore product in prose (tests/services/openapi.test.ts); the keys are the answer's own.
    clickhouse: Type.Unknown({ description: "the same for the analytics store, or \"disabled\"" }),
  },
  { description: "Applied and pending migrations per datastore" },
);

export function registerRoutes(app: App, deps: { known: readonly Datastore[]; report: (only?: Datastore) => Promise<DatastoreReport> }): void {
  const { known, report } = deps;
  const isKnown = (name: string): name is Datastore => (known as readonly string[]).includes(name);

  app.get("/datastores", { schema: { response: { 200: Report, 503: Report } } }, async (req, reply) => {
    requireIdentity(req, "admin");
    const r = await report();
    return reply.status(r.status === "failing" ? 503 : 200).send(r);
  });

  app.get("/datastores/:name", { schema: { params: Type.Object({ name: Type.String({ maxLength: 32 }) }), response: { 200: One, 503: One } } }, async (req, reply) => {
    requireIdentity(req, "admin");
    const name = req.params.name;
    if (!isKnown(name)) throw notFound(`Unknown datastore ${name}: GET /datastores lists the deployed ones`);
    const health = (await report(name)).datastores[name];
    if (!health) throw notFound(`Unknown datastore ${name}: GET /datastores lists the deployed ones`);
    return reply.status(health.status === "failing" ? 503 : 200).send({ name, ...health });
  });

  app.get("/migrations", { schema: { response: { 200: Migrations } } }, async (req) => {
    requireIdentity(req, "admin");
    const postgres = postgresMigrationStatus(await appliedPostgresMigrations(app.pg), loadMigrationFiles(POSTGRES_MIGRATIONS_DIR));
    const clickhouse = app.datastores.isEnabled("clickhouse")
      ? clickhouseMigrationStatus(await appliedClickHouseMigrations(app.clickhouse), loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR))
      : "disabled";
    return { postgres, clickhouse };
  });
}
