/**
 * What the trading-engine recorded, read back from PostgreSQL by the kill-switch tests
 * (kill-switch-engine, kill-switch-reduce-only): an order's fills, status and te_outbox events, and
 * users made for a test; atCommit for fakes of a COMMIT that fails.
 */
import { randomUUID } from "node:crypto";
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";

export function engineRecords(client: () => PostgresClient) {
  return {
    fillsOf: async (orderId: string) =>
      (await client().query<{ fill_id: string }>("SELECT fill_id FROM te_fills WHERE order_id = $1 ORDER BY fill_id", [orderId])).rows.map((r) => r.fill_id),
    statusOf: async (orderId: string) => (await client().query<{ status: string }>("SELECT status FROM te_orders WHERE order_id = $1", [orderId])).rows[0]?.status,
    /** The te_outbox events of an order (fills included): what order-management will hear. */
    eventsOf: async (orderId: string) =>
      (
        await client().query<{ type: string; remaining: string | null }>(
          "SELECT payload->>'type' AS type, payload->>'remaining' AS remaining FROM te_outbox WHERE payload->>'orderId' = $1 OR payload->'fill'->>'orderId' = $1 ORDER BY id",
          [orderId],
        )
      ).rows,
    /** A user row (trading_states and the orders refer to users). */
    newUser: async (): Promise<string> => {
      const id = randomUUID();
      await client().query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", [id, `${id}@example.test`]);
      return id;
    },
  };
}

/** `client` whose transactions record every statement they send, BEGIN's message first: the round trips counted. */
export function recordingStatements(client: PostgresClient): { pg: PostgresClient; texts: string[] } {
  const texts: string[] = [];
  const pg: PostgresClient = {
    ...client,
    transaction: (fn, opts) => {
      texts.push(`BEGIN; ${opts?.begin ?? ""}`);
      return client.transaction((tx, begun, each, commitWith) => {
        const query = tx.query.bind(tx);
        tx.query = ((text: string, values?: unknown[]) => (texts.push(text), query(text, values))) as typeof tx.query;
        return fn(tx, begun, each, commitWith).finally(() => (tx.query = query));
      }, opts);
    },
  };
  return { pg, texts };
}

type TransactionWork<T> = Parameters<PostgresClient["transaction"]>[0] extends (...a: infer A) => unknown ? (...a: A) => Promise<T> : never;

/**
 * Runs a transaction's work with `atCommit` called where its COMMIT is sent: with the work's last
 * statement (commitWith, sent only if atCommit returns), or after the work if it did not call it.
 * A fake that throws there is a COMMIT that never reached PostgreSQL (a killed process, a lost connection).
 */
export async function atCommit<T>(fn: TransactionWork<T>, [tx, begun, each, commitWith]: Parameters<TransactionWork<T>>, hook: () => void): Promise<T> {
  let committed = false;
  const r = await fn(tx, begun, each, (last) => (hook(), (committed = true), commitWith(last)));
  if (!committed) hook();
  return r;
}
