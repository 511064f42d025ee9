/**
 * The migration job takes database-service's environment, its POSTGRES_POOL_MAX too, and needs two
 * connections of that pool: its run lock (a session advisory lock, services/src/migrations/index.ts)
 * on one, the migrations on another. With one it failed after POSTGRES_CONNECT_TIMEOUT_MS; the stack
 * config refuses a pool below catalog MIGRATION_JOB_POOL_MIN for it (session 54, when the Kubernetes
 * replica's pool became 3: tests/unit/service-settings.test.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { catalog } from "../../catalog";
import { MIGRATION_JOB_POOL_MIN } from "../../catalog/service-settings";
import { createLogger } from "../../services/src/kit";
import { Datastores } from "../../services/src/kit/datastores";
import { migrateAll } from "../../services/src/migrations";

const srv = useServers("postgres");
const databaseService = catalog.find((s) => s.preDeployJob)!;
const quiet = { info() {}, warn() {} } as unknown as Parameters<typeof migrateAll>[1];
let open: Datastores | undefined;

/** The job's datastores as the service builds them, PostgreSQL alone, with a pool of `max`. */
function jobDatastores(max: number, connectTimeoutMs: number): Datastores {
  const configs = { postgres: { POSTGRES_URL: srv.env.POSTGRES_URL, POSTGRES_POOL_MAX: max, POSTGRES_CONNECT_TIMEOUT_MS: connectTimeoutMs } };
  open = new Datastores(databaseService, configs as ConstructorParameters<typeof Datastores>[1], { postgres: { status: "enabled" } } as ConstructorParameters<typeof Datastores>[2], createLogger("migration-job-pool-test", "silent"));
  return open;
}

afterEach(async () => {
  await open?.get("postgres").close();
  open = undefined;
});

describe("the migration job's pool", () => {
  it(`fails with ${MIGRATION_JOB_POOL_MIN - 1} connection, waiting for the second, and leaves nothing applied or locked`, async () => {
    await expect(migrateAll(jobDatastores(MIGRATION_JOB_POOL_MIN - 1, 2_000), quiet)).rejects.toThrow(/timeout exceeded when trying to connect/);
    const { rows } = await jobDatastores(1, 30_000).get("postgres").query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
    expect(rows[0].n).toBe(0);
  });

  it(`migrates with ${MIGRATION_JOB_POOL_MIN}`, async () => {
    const report = await migrateAll(jobDatastores(MIGRATION_JOB_POOL_MIN, 30_000), quiet);
    // The first run on this file's database: every migration applied by it.
    expect(report.postgres).toMatchObject({ alreadyApplied: [] });
    expect((report.postgres as { applied: string[] }).applied.length).toBeGreaterThan(0);
    expect(report.clickhouse).toBe("disabled");
  });
});
