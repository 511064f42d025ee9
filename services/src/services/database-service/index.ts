/**
 * database-service: owns the schema of every datastore and reports their health and latency.
 *   `node dist/main.js database-service migrate`  one-shot (the catalog preDeployJob): exit 0/1
 *   GET /datastores          each catalog datastore: enabled | disabled | failing, latency ms
 *   GET /datastores/:name    one of them
 *   GET /migrations          applied PostgreSQL / ClickHouse migrations and pending files
 */
import { Gauge } from "prom-client";
import type { Datastore } from "../../catalog";
import { defineService, Type, notFound, type ServiceContext } from "../../kit";
import {
  migrateAll,
  loadMigrationFiles,
  POSTGRES_MIGRATIONS_DIR,
  CLICKHOUSE_MIGRATIONS_DIR,
  CLICKHOUSE_TRACKING_TABLE,
} from "../../migrations";

export interface DatastoreHealth {
  status: "enabled" | "disabled" | "failing";
  required: boolean;
  latencyMs?: number;
  error?: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}

export async function checkDatastores(ctx: ServiceContext<{ DATASTORE_CHECK_TIMEOUT_MS: number }>, only?: Datastore) {
  const def = ctx.definition;
  const all = [...def.requires.map((d) => [d, true] as const), ...def.optional.map((d) => [d, false] as const)].filter(
    ([d]) => !only || d === only,
  );
  const entries = await Promise.all(
    all.map(async ([d, required]): Promise<[Datastore, DatastoreHealth]> => {
      if (!ctx.datastores.isEnabled(d)) return [d, { status: "disabled", required }];
      const t0 = performance.now();
      try {
        await withTimeout(ctx.datastores.get(d).ping(), ctx.config.DATASTORE_CHECK_TIMEOUT_MS, d);
        return [d, { status: "enabled", required, latencyMs: Math.round((performance.now() - t0) * 100) / 100 }];
      } catch (e) {
        return [d, { status: "failing", required, latencyMs: Math.round(performance.now() - t0), error: (e as Error).message.slice(0, 300) }];
      }
    }),
  );
  return Object.fromEntries(entries) as Partial<Record<Datastore, DatastoreHealth>>;
}

export default defineService({
  name: "database-service",
  config: {
    /** Bound on each datastore probe of GET /datastores. */
    DATASTORE_CHECK_TIMEOUT_MS: Type.Integer({ default: 2_000, minimum: 50, maximum: 60_000 }),
    /** Bound on waiting for another migrate run's advisory lock. */
    MIGRATE_LOCK_TIMEOUT_MS: Type.Integer({ default: 300_000, minimum: 100 }),
  },
  async register(ctx) {
    const { app } = ctx;
    const latency = new Gauge({
      name: "datastore_probe_latency_ms",
      help: "Latency of the last datastore probe (ms); -1 when failing",
      labelNames: ["datastore"],
      registers: [ctx.metrics.registry],
    });

    const report = async (only?: Datastore) => {
      const datastores = await checkDatastores(ctx, only);
      for (const [d, h] of Object.entries(datastores)) {
        if (h.status !== "disabled") latency.set({ datastore: d }, h.status === "failing" ? -1 : h.latencyMs ?? 0);
      }
      const failingRequired = Object.values(datastores).some((h) => h.status === "failing" && h.required);
      const failingAny = Object.values(datastores).some((h) => h.status === "failing");
      return { status: failingRequired ? "failing" : failingAny ? "degraded" : "ok", checkedAt: new Date().toISOString(), datastores };
    };

    app.get("/datastores", async (_req, reply) => {
      const r = await report();
      return reply.status(r.status === "failing" ? 503 : 200).send(r);
    });

    const names = [...ctx.definition.requires, ...ctx.definition.optional] as string[];
    app.get(
      "/datastores/:name",
      { schema: { params: Type.Object({ name: Type.String({ maxLength: 32 }) }) } },
      async (req, reply) => {
        if (!names.includes(req.params.name)) throw notFound(`Unknown datastore ${req.params.name} (known: ${names.join(", ")})`);
        const r = await report(req.params.name as Datastore);
        const h = r.datastores[req.params.name as Datastore]!;
        return reply.status(h.status === "failing" ? 503 : 200).send({ name: req.params.name, ...h });
      },
    );

    app.get("/migrations", async () => {
      const pgFiles = loadMigrationFiles(POSTGRES_MIGRATIONS_DIR);
      const { rows } = await ctx.datastores.postgres
        .query<{ file: string; checksum: string; applied_at: Date; duration_ms: number }>(
          "SELECT file, checksum, applied_at, duration_ms FROM schema_migrations ORDER BY version, file",
        )
        .catch((e: { code?: string }) => {
          if (e.code === "42P01") return { rows: [] }; // table not created yet: nothing applied
          throw e;
        });
      const applied = new Map(rows.map((r) => [r.file, r]));
      const postgres = {
        applied: rows.map((r) => ({
          file: r.file,
          appliedAt: r.applied_at,
          durationMs: r.duration_ms,
          checksumMatches: pgFiles.find((f) => f.file === r.file)?.checksum === r.checksum,
        })),
        pending: pgFiles.filter((f) => !applied.has(f.file)).map((f) => f.file),
      };
      let clickhouse: unknown = "disabled";
      if (ctx.datastores.isEnabled("clickhouse")) {
        const chFiles = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
        const done = await ctx.datastores.clickhouse
          .query<{ file: string }>(`SELECT DISTINCT file FROM ${CLICKHOUSE_TRACKING_TABLE}`)
          .catch(() => [] as { file: string }[]);
        const doneSet = new Set(done.map((d) => d.file));
        clickhouse = { applied: [...doneSet].sort(), pending: chFiles.filter((f) => !doneSet.has(f.file)).map((f) => f.file) };
      }
      return { postgres, clickhouse };
    });
  },
  commands: {
    async migrate(ctx) {
      try {
        const r = await migrateAll(ctx.datastores, ctx.log, { lockTimeoutMs: ctx.config.MIGRATE_LOCK_TIMEOUT_MS });
        ctx.log.info({ report: r }, "migrations complete");
        return 0;
      } catch (e) {
        ctx.log.error({ err: { message: (e as Error).message } }, "migrations failed");
        return 1;
      }
    },
  },
});
