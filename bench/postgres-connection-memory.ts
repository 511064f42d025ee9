/**
 * What one PostgreSQL connection costs the server in memory beside shared_buffers: the figure
 * catalog/sizing.ts POSTGRES_MEMORY.backendMiB takes (the stack refuses a max_connections whose
 * memory, postgresMemoryNeed there, exceeds trading:postgresMemoryGi). On real PostgreSQL
 * (tests/harness, Debian's 15 here) with the platform's schema (every migration):
 *
 *   npx tsx bench/postgres-connection-memory.ts [connections=40]
 *
 * Opens `connections` connections as a service's pool holds them after a while in service: each has
 * read every table of the schema (its catalog and relation caches filled for all of them, as a
 * database-service or a migration's connection has) and prepared a statement on each (the kit
 * PREPAREs the order path's statements on every connection it uses, postgres.ts prepareStatements).
 * Then it reads each backend's own memory (its anonymous pages and page tables: what the kernel
 * charges to the container for it alone; the shared buffers it touched are shared memory, charged
 * once) and prints the mean and the largest, beside a connection that only ran SELECT 1. A backend's work_mem (each sort or hash it runs, 4 MB by
 * default) comes on top while a query runs and is freed after it: not measured here, added by the check.
 * Needs to read the backends' /proc entries: run it as root or as the server's user.
 */
import { readFileSync } from "node:fs";
import { pg, startPostgres } from "../tests/harness";
import { runPostgresMigrations } from "../services/src/migrations";

const CONNECTIONS = Number(process.argv[2] ?? 40);

/**
 * A process's own memory in KiB: its anonymous pages (smaps_rollup `Anonymous`: palloc'd memory, the
 * caches; not the shared buffers, which are shared memory even where one backend alone touched them)
 * and its page tables (status `VmPTE`: a backend maps the shared buffers it touches).
 */
function ownKiB(pid: number): number {
  const field = (file: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/${file}`, "utf8"))?.[1] ?? NaN);
  return field("smaps_rollup", "Anonymous") + field("status", "VmPTE");
}

async function main() {
  // The server's default shared_buffers (128MB), which the stacks run with.
  const postgres = await startPostgres({ readyTimeoutMs: 600_000, settings: ["shared_buffers=128MB"] });
  try {
    const url = await postgres.createDatabase("memory");
    const migrator = new pg.Pool({ connectionString: url, max: 2 });
    await runPostgresMigrations(migrator);
    await migrator.end();

    const fresh = new pg.Client({ connectionString: url });
    await fresh.connect();
    const freshPid = (await fresh.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;

    const clients: { client: InstanceType<typeof pg.Client>; pid: number }[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      clients.push({ client, pid });
    }
    const tables = (await clients[0].client.query<{ name: string }>("SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.name);
    for (const { client } of clients) {
      for (const [i, t] of tables.entries()) {
        await client.query(`SELECT * FROM ${t} LIMIT 1`);
        await client.query(`PREPARE s${i} AS SELECT * FROM ${t} LIMIT 1`);
      }
    }
    await fresh.query("SELECT 1");

    const used = clients.map(({ pid }) => ownKiB(pid));
    const mib = (kib: number) => (kib / 1024).toFixed(1);
    const mean = used.reduce((n, k) => n + k, 0) / used.length;
    console.log(`tables ${tables.length}, connections ${CONNECTIONS}`);
    console.log(`own memory of a backend that ran SELECT 1: ${mib(ownKiB(freshPid))} MiB`);
    console.log(`own memory of a backend that read and prepared on every table: mean ${mib(mean)} MiB, largest ${mib(Math.max(...used))} MiB`);
    for (const { client } of clients) await client.end();
    await fresh.end();
  } finally {
    await postgres.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
