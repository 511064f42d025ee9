/**
 * The per-user order locks, sent with BEGIN as one statement of literals (order-management's submit
 * transaction), against a real PostgreSQL: ids with quotes, backslashes and other characters are
 * quoted, not interpreted, and lock exactly their users (another connection cannot take them until
 * the transaction ends); an id holding a NUL byte is refused before anything is sent. The risk facts
 * and the Idempotency-Key lookup, sent in the same round trip as literals, answer exactly what their
 * parameterised forms answer for the same hostile ids, symbols and keys. The accounts' lock sent in
 * that round trip (kit lockAccountsStatements) holds exactly the accounts' rows among hostile ids (no
 * cast error: an id that is no lower-case UUID matches no row) and reads their tombstones.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { randomUUID } from "node:crypto";
import { runPostgresMigrations } from "../../services/src/migrations";
import { findByIdempotencyKeys, idempotencyKeysStatement, ORDERS_BY_IDEMPOTENCY_KEYS } from "../../services/src/services/order-management/data";
import { LOCK_USERS_ORDERS, lockedAt, lockUsersOrdersStatement, RISK_FACTS, riskFactsMany, riskFactsOf, riskFactsStatement } from "../../services/src/trading/infra/riskContext";
import { prepareStatements } from "../../services/src/kit/datastores/postgres";
import { ACCOUNT_LOCKS, deletedAccountsOf, lockAccountsStatements } from "../../services/src/kit/accounts";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const ORDER_LOCK_SPACE = 0x6f72;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 3 });
  await runPostgresMigrations(pool);
}, 300_000);

const HOSTILE = ["o'brien", "back\\slash", "'); SELECT pg_sleep(10); --", "$1 $$x$$", "ünïcødé ✓", "E'\\x41'"];

afterAll(async () => {
  await pool?.end();
});

describe("per-user order locks with BEGIN", () => {
  it("quotes hostile ids and locks exactly their users until the transaction ends", async () => {
    const ids = ["o'brien", "back\\slash", "'); SELECT pg_sleep(10); --", "$1 $$x$$", "ünïcødé ✓", "E'\\x41'"];
    const holder = await pool.connect();
    const other = await pool.connect();
    try {
      await prepareStatements(holder, [LOCK_USERS_ORDERS]);
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

  it("the accounts' lock and tombstones (kit lockAccountsStatements) among hostile ids: the account's row held, the tombstone read, nothing else", async () => {
    const [live, gone] = [randomUUID(), randomUUID()];
    await pool.query("INSERT INTO users (id, email, password_hash) VALUES ($1::uuid, $1::text || '@locks.test', 'h')", [live]);
    await pool.query("INSERT INTO deleted_users (user_id) VALUES ($1)", [gone]);
    const holder = await pool.connect();
    const other = await pool.connect();
    try {
      await prepareStatements(holder, ACCOUNT_LOCKS);
      const answer = (await holder.query(`BEGIN; ${lockAccountsStatements([...HOSTILE, live.toUpperCase(), live, gone]).join("; ")}`)) as unknown as { rows: object[] }[];
      expect(answer[1].rows).toEqual([{ id: live }]);
      expect(deletedAccountsOf(answer[2].rows)).toEqual(new Set([gone]));
      // The deletion of the held account waits for this transaction (here: until its lock_timeout).
      await other.query("BEGIN; SET LOCAL lock_timeout = 200");
      await expect(other.query("DELETE FROM users WHERE id = $1", [live])).rejects.toMatchObject({ code: "55P03" });
      await other.query("ROLLBACK");
      await holder.query("COMMIT");
      expect((await other.query("DELETE FROM users WHERE id = $1", [live])).rowCount).toBe(1);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
      other.release();
    }
  });
});

describe("risk facts and Idempotency-Keys with BEGIN", () => {
  it("answer as their parameterised forms for hostile ids, symbols and keys", async () => {
    // Open orders of each hostile user, each under a hostile Idempotency-Key.
    for (const [i, userId] of HOSTILE.entries())
      await pool.query(
        `INSERT INTO om_orders (order_id, user_id, client_order_id, idempotency_key, request_hash, symbol, side, type, quantity, status)
         VALUES ($1::uuid, $2, $1::text, $3, 'h', $4, 'buy', 'market', $5, 'accepted')`,
        [randomUUID(), userId, HOSTILE[(i + 1) % HOSTILE.length], i % 2 ? "BTCUSDT" : HOSTILE[i], String(i + 1)],
      );
    const pairs = HOSTILE.flatMap((userId, i) => [{ userId, symbol: "BTCUSDT" }, { userId, symbol: HOSTILE[i] }]);
    const keys = HOSTILE.map((userId, i) => ({ userId, key: HOSTILE[(i + 1) % HOSTILE.length] }));
    const client = await pool.connect();
    try {
      await prepareStatements(client, [LOCK_USERS_ORDERS, RISK_FACTS, ORDERS_BY_IDEMPOTENCY_KEYS]);
      const answer = (await client.query(`BEGIN; ${lockUsersOrdersStatement(HOSTILE)}; ${riskFactsStatement(pairs, 60_000, 200)}; ${idempotencyKeysStatement(keys)}`)) as unknown as { rows: object[] }[];
      expect(answer).toHaveLength(4);
      const facts = riskFactsOf(answer[2].rows);
      expect(facts).toEqual(await riskFactsMany(client, pairs, 60_000, 200));
      expect(facts.map((f) => f.openBuy)).toEqual(HOSTILE.flatMap((_, i) => (i % 2 ? [String(i + 1), "0"] : ["0", String(i + 1)])));
      expect(lockedAt(answer[2].rows)).toBeInstanceOf(Date);
      const sortById = (rows: object[]) => [...rows].sort((a, b) => String((a as { order_id: string }).order_id).localeCompare((b as { order_id: string }).order_id));
      const priors = answer[3].rows;
      expect(priors).toHaveLength(HOSTILE.length);
      expect(sortById(priors)).toEqual(sortById(await findByIdempotencyKeys(client, keys)));
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(idempotencyKeysStatement([])).toBeUndefined();
    expect(() => riskFactsStatement([{ userId: "u", symbol: "BAD\u0000" }], 60_000, 200)).toThrow(/NUL/);
    expect(() => idempotencyKeysStatement([{ userId: "u", key: "k\u0000" }])).toThrow(/NUL/);
  });
});
