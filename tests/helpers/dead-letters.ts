/** notification-service's dead letters made directly in PostgreSQL (nt_deliveries + nt_dead_letters), for tests of replays. */
import { randomUUID } from "node:crypto";

type Q = { query<R extends object>(text: string, values: unknown[]): Promise<{ rows: R[] }> };

/** A dead webhook delivery of `user` with its dead letter; the dead letter's id. */
export async function deadWebhookLetter(q: Q, user: string): Promise<string> {
  const { rows } = await q.query<{ delivery_id: string }>(
    `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status)
     VALUES ($1, $2, 'webhook', 'w', 'fill', 's', 'b', '{}', 'dead') RETURNING delivery_id`,
    [randomUUID(), user],
  );
  const l = await q.query<{ id: string }>(
    "INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) VALUES ($1, $2, 'webhook', 'webhook: 410 gone', 3) RETURNING dead_letter_id::text AS id",
    [rows[0].delivery_id, user],
  );
  return l.rows[0].id;
}
