/**
 * What a consumer does with a message it can never apply: set it aside in `consumer_dead_letters`
 * (migrations/postgres/0195) with the reason, and keep consuming. Only errors that say something
 * about the message are poison; an outage (connection refused, serialization failure, server
 * shutting down) is retried instead, so nothing is set aside because a datastore blinked.
 */
import type { Queryable } from "../../kit";
import { NETWORK_ERROR_CODES } from "../../kit/network-errors";

/** Thrown by a handler for a message that is malformed or carries values that can never be applied. */
export class PoisonMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PoisonMessageError";
  }
}

/** SQLSTATE classes of a datastore or transaction problem, not of the data: 08 connection, 40 rollback
 * (serialization, deadlock), 53 resources, 57 operator intervention, 58 system, XX internal. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58|XX)/;

/** True when the error says a datastore or the network failed (retry), false when the message is at fault. */
export function isTransientError(err: unknown): boolean {
  if (err instanceof PoisonMessageError) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; retriable?: unknown };
  if (typeof e?.code === "string" && (NETWORK_ERROR_CODES.has(e.code) || (e.code.length === 5 && TRANSIENT_SQLSTATE.test(e.code)))) return true;
  if (typeof e?.name === "string" && e.name.startsWith("KafkaJS")) return true;
  const msg = typeof e?.message === "string" ? e.message : "";
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|pool is ending/i.test(msg);
}

export interface DeadLetter {
  groupId: string;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  reason: string;
}

/** The reason as text PostgreSQL accepts (no NUL, well-formed UTF-16), bounded. */
export function reasonText(err: unknown): string {
  const raw = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return raw.replace(/\u0000/g, "\\0").replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd").slice(0, 1000);
}

export async function recordDeadLetter(db: Queryable, d: DeadLetter): Promise<void> {
  await db.query(
    `INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
    [d.groupId, d.topic, d.partition, d.offset, d.key, d.value, d.reason],
  );
}
