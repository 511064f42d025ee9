/**
 * A PostgreSQL connection lost while a client is checked out (pool.connect(): a transaction, held
 * advisory locks, a LISTEN) must fail that client's work, not the process. pg-pool hears a client's
 * 'error' only while it is idle; before the kit's own listener, pg_terminate_backend on a held
 * client's backend was an uncaught 'error' event (session 53, found by the payments work).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createPostgres } from "../../services/src/kit/datastores/postgres";

const srv = useServers("postgres");
const lines: string[] = [];
const log = { warn: (o: unknown, msg: string) => lines.push(`${msg} ${JSON.stringify(o)}`) } as unknown as Parameters<typeof createPostgres>[1];
let pg: ReturnType<typeof createPostgres>;

beforeAll(() => {
  pg = createPostgres({ POSTGRES_URL: srv.env.POSTGRES_URL, POSTGRES_POOL_MAX: 4, POSTGRES_CONNECT_TIMEOUT_MS: 10_000 } as Parameters<typeof createPostgres>[0], log);
});
afterAll(() => pg?.pool.end());

async function terminate(pid: number): Promise<void> {
  const r = await pg.query<{ ok: boolean }>("SELECT pg_terminate_backend($1) AS ok", [pid]);
  expect(r.rows[0].ok).toBe(true);
}

describe("kit postgres: a connection lost while held", () => {
  it("a held client's backend terminated between queries: its next query fails, the process goes on, the pool serves again", async () => {
    const held = await pg.pool.connect();
    const { rows } = await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    await terminate(rows[0].pid);
    // The 'error' event lands when the socket closes: wait for the listener's line, not a fixed time.
    await expect.poll(() => lines.some((l) => l.includes("postgres connection lost")), { timeout: 20_000 }).toBe(true);
    await expect(held.query("SELECT 1")).rejects.toThrow();
    held.release(true);
    expect((await pg.query<{ one: number }>("SELECT 1 AS one")).rows[0].one).toBe(1);
  });

  it("a transaction's backend terminated mid-statement: the transaction rejects, nothing uncaught", async () => {
    const lost: string[] = [];
    const pid = new Promise<number>((resolve, reject) => {
      pg.transaction(async (c) => {
        resolve((await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid);
        await c.query("SELECT pg_sleep(30)");
      }).then(() => reject(new Error("the transaction committed")), (e: Error) => lost.push(e.message));
    });
    await terminate(await pid);
    await expect.poll(() => lost.length, { timeout: 20_000 }).toBe(1);
    expect((await pg.query<{ one: number }>("SELECT 1 AS one")).rows[0].one).toBe(1);
    // (the log line names the error's message only: no connection string, no password)
    expect(lines.join("\n")).not.toContain(srv.env.POSTGRES_URL);
  });
});
