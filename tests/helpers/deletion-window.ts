/**
 * An account's deletion interleaved with a write of its data, forced on real PostgreSQL by held
 * transactions on connections of their own (never by timing), for the two orders the write window
 * allows (kit accounts.ts, lockAccountForWrite):
 *   - writeFirst: the write has checked the account and is held at its insert by a gate, a transaction
 *     holding what the insert waits for (tableGate: a SHARE lock on the table; or a row of the same
 *     unique key, not committed); the deletion (user-management's data.deleteUser, what
 *     `DELETE /admin/users/:id` commits) then runs. Answers whether the deletion waited for the write's
 *     transaction (on the account's row) before the gate let the write go on.
 *   - deletionFirst: the deletion has run and is not committed yet; the write then runs. Answers
 *     whether the write waited for the deletion (on the row) until it committed.
 *   - duringCall: the write holds the account's lock through a call elsewhere (a card processor's) and
 *     is held there (the test's stand-in for that service answers once released); the deletion then
 *     runs. Answers whether the deletion waited (on a row) before the call was let go.
 * Each wait is observed in pg_stat_activity / pg_blocking_pids, polled until it shows or the other
 * side answered: an answer first is the window open (the old behaviour, a tombstone read without a lock).
 */
import { pg } from "../harness";
import { deleteUser } from "../../services/src/services/user-management/data";

type Client = InstanceType<typeof pg.Client>;
/** Bound of a wait for a lock to show: generous, it only guards against a hang on a loaded machine. */
const SHOW_MS = 60_000;

/** A promise and whether it has settled yet. */
function tracked<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  const q = p.finally(() => (done = true));
  q.catch(() => undefined); // awaited by the caller; not an unhandled rejection meanwhile
  return { p: q, settled: () => done };
}

/** What a writeFirst gate holds (on its own connection, in a transaction) to stop the write at its insert. */
export type Gate = (c: Client) => Promise<unknown>;
/** A gate for a write whose statements before its insert only read `table` (a PREPARE of an insert would wait too). */
export const tableGate = (table: string): Gate => (c) => c.query(`LOCK TABLE ${table} IN SHARE MODE`);

/** The backends waiting for a lock `pid` holds: on a row (`row`: a transaction id or tuple lock), or any (`any`, a table's included; an advisory lock never). */
async function waitersOn(db: Client, pid: number, on: "row" | "any"): Promise<number[]> {
  const events = on === "row" ? ["transactionid", "tuple"] : ["transactionid", "tuple", "relation"];
  const { rows } = await db.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) AND wait_event_type = 'Lock' AND wait_event = ANY($2::text[])",
    [pid, events],
  );
  return rows.map((r) => r.pid);
}

/** Polls until backend `pid` waits for a row lock (true), or false once `other` settled first. */
async function waitsOnRow(db: Client, pid: number, other: () => boolean): Promise<boolean> {
  const until = Date.now() + SHOW_MS;
  for (;;) {
    const { rowCount } = await db.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock' AND wait_event = ANY($2::text[])", [pid, ["transactionid", "tuple"]]);
    if (rowCount) return true;
    if (other()) return false;
    if (Date.now() > until) throw new Error(`${pid} waited for no row within ${SHOW_MS} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Polls until a backend (`who`, when given) waits for `pid` and answers its pid, or undefined once `other` settled first. */
async function waiterOf(db: Client, pid: number, on: "row" | "any", other: () => boolean, who?: number): Promise<number | undefined> {
  const until = Date.now() + SHOW_MS;
  for (;;) {
    const waiter = (await waitersOn(db, pid, on)).find((w) => who === undefined || w === who);
    if (waiter !== undefined) return waiter;
    if (other()) return undefined;
    if (Date.now() > until) throw new Error(`no backend waited for ${pid} within ${SHOW_MS} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function deletionWindow(url: string) {
  /** A connection of its own, and its backend's pid. */
  const connected = async (): Promise<Client & { pid: number }> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return Object.assign(c, { pid: (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid });
  };
  return {
    async writeFirst<T>(userId: string, hold: Gate, write: () => Promise<T>): Promise<{ write: T; deleted: boolean; deletionWaited: boolean }> {
      const [gate, deleter, watcher] = await Promise.all([connected(), connected(), connected()]);
      try {
        await gate.query("BEGIN");
        await hold(gate);
        const w = tracked(write());
        const writer = await waiterOf(watcher, gate.pid, "any", w.settled);
        if (writer === undefined) throw new Error(`the write answered ${JSON.stringify(await w.p)} without meeting the gate`);
        const d = tracked(deleteUser(deleter, userId));
        const deletionWaited = (await waiterOf(watcher, writer, "row", d.settled, deleter.pid)) !== undefined;
        await gate.query("ROLLBACK");
        return { write: await w.p, deleted: await d.p, deletionWaited };
      } finally {
        await Promise.all([gate, deleter, watcher].map((c) => c.end().catch(() => undefined)));
      }
    },

    async duringCall<T>(userId: string, call: { reached: Promise<void>; release: () => void }, write: () => Promise<T>): Promise<{ write: T; deleted: boolean; deletionWaited: boolean }> {
      const [deleter, watcher] = await Promise.all([connected(), connected()]);
      try {
        const w = tracked(write());
        await Promise.race([call.reached, w.p]);
        if (w.settled()) throw new Error(`the write answered ${JSON.stringify(await w.p)} without reaching the call`);
        const d = tracked(deleteUser(deleter, userId));
        const deletionWaited = await waitsOnRow(watcher, deleter.pid, d.settled);
        call.release();
        return { write: await w.p, deleted: await d.p, deletionWaited };
      } finally {
        call.release();
        await Promise.all([deleter, watcher].map((c) => c.end().catch(() => undefined)));
      }
    },

    async deletionFirst<T>(userId: string, write: () => Promise<T>): Promise<{ write: T; writeWaited: boolean }> {
      const [deleter, watcher] = await Promise.all([connected(), connected()]);
      try {
        await deleter.query("BEGIN");
        if (!(await deleteUser(deleter, userId))) throw new Error(`no account ${userId} to delete`);
        const w = tracked(write());
        const writeWaited = (await waiterOf(watcher, deleter.pid, "row", w.settled)) !== undefined;
        await deleter.query("COMMIT");
        return { write: await w.p, writeWaited };
      } finally {
        await Promise.all([deleter, watcher].map((c) => c.end().catch(() => undefined)));
      }
    },
  };
}
