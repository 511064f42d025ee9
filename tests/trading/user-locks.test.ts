/**
 * The per-user order locks, sent with BEGIN as one statement of literals (order-management's submit
 * transaction), against a real PostgreSQL: ids with quotes, backslashes and other characters are
 * quoted, not interpreted, and lock exactly their users (another connection cannot take them until
 * the transaction ends); an id holding a NUL byte is refused before anything is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { lockedAt, lockUsersOrdersStatement } from "../../services/src/trading/infra/riskContext";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const ORDER_LOCK_SPACE = 0x6f72;

beforeAll(() => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 3 });
});

afterAll(async () => {
  await pool?.end();
});

describe("per-user order locks with BEGIN", () => {
  it("quotes hostile ids and locks exactly their users until the transaction ends", async () => {
    const ids = ["o'brien", "back\\slash", "'); SELECT pg_sleep(10); --", "$1 $$x$$", "ünïcødé ✓", "E'\\x41'"];
    const holder = await pool.connect();
    const other = await pool.connect();
    try {
      const answer = (await holder.query(`BEGIN; ${lockUsersOrdersStatement(ids)}`)) as unknown as { rows: unknown[] }[];
      expect(answer).toHaveLength(2);
      expect(lockedAt(answer[1].rows)).toBeInstanceOf(Date);
      const free = async (id: string) =>
        (await other.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS ok", [ORDER_LOCK_SPACE, id])).rows[0].ok;
      // Each id's lock is held (taken by its exact text), a user not in the list is free.
      for (const id of ids) expect(await free(id), id).toBe(false);
      expect(await free("someone-else")).toBe(true);
      await holder.query("COMMIT");
      for (const id of ids) expect(await free(id), id).toBe(true);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
      other.release();
    }
  });

  it("refuses an id holding a NUL byte", () => {
    expect(() => lockUsersOrdersStatement(["ok", "bad\u0000id"])).toThrow(/NUL/);
  });
});
