/**
 * database-service's data access to ClickHouse's dead letters (`consumer_dead_letters` of ClickHouse:
 * migrations/clickhouse 0007, 0030, 0031; written by trading/infra/deadLetters.ts setAside for the
 * consumers without PostgreSQL) and to their replay ledger in PostgreSQL (`ch_dead_letter_replays`,
 * migrations/postgres/0506): listed, shown and replayed through the same routes as PostgreSQL's.
 *
 * A letter's id is `ch-` and the first 32 hex digits of the SHA-256 of its natural key, the table's
 * ORDER BY (consumer group and topic each as its length in bytes, `:` and itself, then
 * `<partition>:<offset>`): computed on read (CH_LETTER_ID), so the rows written before it have one
 * too, and a redelivered message, a second row of the same key until a merge folds it, is one letter
 * (read with FINAL). SHA-256 because ClickHouse 18.16 has it and every later version computes it the
 * same (ClickHouse's own hashes are not promised stable across versions), and Node computes it too
 * (clickHouseLetterId). The table's primary key does not serve a lookup by id: one letter is found
 * in `consumer_dead_letter_ids` (migration 0032, fed by a materialized view of every insert), keyed
 * by id, then read by its natural key; before session 54 each lookup read the whole table.
 * A message set aside again once retention deleted its letter has the same id: a new letter all the
 * same, whose replay state is its own row of the ledger (./clickhouse-letter-ledger.ts, session 60).
 */
import { createHash } from "node:crypto";
import type { ClickHouseKitClient, Queryable } from "../../kit";
import { replayMessage } from "../../trading/infra/deadLetters";
import type { LetterReplays, ReplayableLetter } from "./dead-letter-replay";
import { ledgerClaims, ledgerRows, type LedgerRow } from "./clickhouse-letter-ledger";

export const CH_LETTER_ID_PATTERN = "^ch-[0-9a-f]{32}$";
const CH_LETTER_ID =
  "concat('ch-', substring(lower(hex(SHA256(concat(toString(length(consumer_group)), ':', consumer_group, toString(length(topic)), ':', topic, toString(msg_partition), ':', toString(msg_offset))))), 1, 32))";

/** A ClickHouse letter's id, as CH_LETTER_ID computes it on the server. */
export function clickHouseLetterId(consumerGroup: string, topic: string, partition: number, offset: string): string {
  const part = (s: string) => `${Buffer.byteLength(s)}:${s}`;
  return `ch-${createHash("sha256").update(`${part(consumerGroup)}${part(topic)}${partition}:${offset}`).digest("hex").slice(0, 32)}`;
}

/** The bytes a base64 column decodes to (18.16 has no base64Decode), NULL when the message had none. */
const bytesOf = (column: "key" | "value") =>
  `if(ifNull(msg_${column}_null, 0) = 1, NULL, intDiv(length(msg_${column}_base64), 4) * 3 - if(endsWith(msg_${column}_base64, '=='), 2, if(endsWith(msg_${column}_base64, '='), 1, 0)))`;

export interface ClickHouseLetter {
  id: string;
  consumerGroup: string;
  topic: string;
  partition: number;
  offset: string;
  reason: string;
  /** The writer's UTC time as ISO text (it writes UTC text, which the column gives back as written). */
  createdAt: string;
  replayedAt: Date | null;
  replayedOffset: string | null;
  replayClaimedAt: Date | null;
}
export type ListedClickHouseLetter = ClickHouseLetter & { keyBytes: number | null; valueBytes: number | null; headerCount: number | null; cursor: string };

/** `before` of the listing: `<created_at as unix seconds>-<id>` of the last letter of a page. */
export const CH_CURSOR_PATTERN = "^[0-9]{1,12}-ch-[0-9a-f]{32}$";
/** The latest second a letter's created_at (ClickHouse DateTime, unsigned 32-bit seconds) holds: 2106-02-07T06:28:15Z. */
export const CH_LATEST_SECOND = 4_294_967_295;

/**
 * A listing cursor (CH_CURSOR_PATTERN) as its created_at seconds and letter id, or undefined when
 * it is no page's nextBefore: seconds past CH_LATEST_SECOND, which no letter has. Session 56: such
 * a cursor was bound to ClickHouse as is and read as later than every letter (a page from the
 * newest, as without a cursor); a cursor that is no page's is refused, as the other listings' are
 * (kit paging.ts).
 */
export function clickHouseCursor(before: string): { at: number; id: string } | undefined {
  const cut = before.indexOf("-");
  const at = Number(before.slice(0, cut));
  return Number.isSafeInteger(at) && at <= CH_LATEST_SECOND ? { at, id: before.slice(cut + 1) } : undefined;
}

const headerCount = (text: string): number | null => {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.length : null;
  } catch {
    return null;
  }
};
const isoOf = (chText: string) => `${chText.replace(" ", "T")}Z`;

interface ChRow {
  id: string;
  consumer_group: string;
  topic: string;
  msg_partition: number;
  msg_offset: string;
  reason: string;
  created_at: string;
  msg_headers: string;
}

/** How many letters a listing filtered by `replayed` reads from ClickHouse per query, and at most per request. */
export const CH_FILTER_PAGE = 1_000;
export const CH_FILTER_READ_MAX = 10 * CH_FILTER_PAGE;

/**
 * A page of letters newest first (created_at, then id), without their bytes, and the cursor of the
 * next page (null: the last). `replayed` is told by the ledger in PostgreSQL: the letters are read
 * from ClickHouse in pages of CH_FILTER_PAGE, each page's ids looked up in the ledger, until `limit`
 * letters pass or CH_FILTER_READ_MAX were read; then the page may hold fewer than `limit`, its cursor
 * the last letter read. Before session 54 every replayed id of the ledger went to ClickHouse in one
 * query: past about 6,500 of them the query outgrew ClickHouse's max_query_size and the listing failed.
 */
export async function listClickHouseLetters(
  ch: ClickHouseKitClient,
  pg: Queryable,
  f: { topic?: string; consumerGroup?: string; replayed?: boolean; before?: string; limit: number },
): Promise<{ letters: ListedClickHouseLetter[]; nextBefore: string | null }> {
  if (f.replayed === undefined) {
    const rows = await clickHouseLetterRows(ch, f, f.before, f.limit + 1);
    const letters = await withLedger(pg, rows);
    return letters.length > f.limit ? { letters: letters.slice(0, f.limit), nextBefore: letters[f.limit - 1].cursor } : { letters, nextBefore: null };
  }
  const letters: ListedClickHouseLetter[] = [];
  let before = f.before;
  for (let read = 0; read < CH_FILTER_READ_MAX; ) {
    const rows = await clickHouseLetterRows(ch, f, before, CH_FILTER_PAGE);
    read += rows.length;
    for (const l of await withLedger(pg, rows)) {
      if ((l.replayedAt !== null) !== f.replayed) continue;
      letters.push(l);
      if (letters.length === f.limit) {
        // The page is full: a next one exists if any row is left after this letter.
        const more = l.cursor !== rows[rows.length - 1]?.cursor || rows.length === CH_FILTER_PAGE;
        return { letters, nextBefore: more ? l.cursor : null };
      }
    }
    if (rows.length < CH_FILTER_PAGE) return { letters, nextBefore: null };
    before = rows[rows.length - 1].cursor;
  }
  return { letters, nextBefore: before ?? null };
}

type ListedRow = ChRow & { created_unix: number | string; key_bytes: number | string | null; value_bytes: number | string | null; cursor: string };

/** Up to `limit` letters of the filter's group and topic newest first, after the cursor `before`. */
async function clickHouseLetterRows(ch: ClickHouseKitClient, f: { topic?: string; consumerGroup?: string }, before: string | undefined, limit: number): Promise<ListedRow[]> {
  const params: Record<string, unknown> = { limit };
  const outer: string[] = [];
  const inner: string[] = [];
  if (f.consumerGroup !== undefined) (inner.push("consumer_group = {group:String}"), (params.group = f.consumerGroup));
  if (f.topic !== undefined) (inner.push("topic = {topic:String}"), (params.topic = f.topic));
  if (before !== undefined) {
    const cursor = clickHouseCursor(before);
    // (the route refused any other: every cursor here is a page's)
    if (!cursor) throw new RangeError("a ClickHouse dead-letter cursor past its DateTime range");
    outer.push("(created_unix < {beforeAt:UInt32} OR (created_unix = {beforeAt:UInt32} AND id < {beforeId:String}))");
    Object.assign(params, { beforeAt: cursor.at, beforeId: cursor.id });
  }
  const rows = await ch.query<Omit<ListedRow, "cursor">>(
    `SELECT * FROM (
       SELECT ${CH_LETTER_ID} AS id, consumer_group, topic, msg_partition, toString(msg_offset) AS msg_offset, reason,
              toString(created_at) AS created_at, toUnixTimestamp(created_at) AS created_unix,
              ${bytesOf("key")} AS key_bytes, ${bytesOf("value")} AS value_bytes, msg_headers
         FROM consumer_dead_letters FINAL ${inner.length ? `WHERE ${inner.join(" AND ")}` : ""}
     ) ${outer.length ? `WHERE ${outer.join(" AND ")}` : ""}
     ORDER BY created_unix DESC, id DESC LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map((r) => ({ ...r, cursor: `${r.created_unix}-${r.id}` }));
}

/** The rows as listed, with their replay state from the ledger (one query of at most the rows' ids). */
async function withLedger(pg: Queryable, rows: ListedRow[]): Promise<ListedClickHouseLetter[]> {
  const ledger = await ledgerRows(pg, rows.map((r) => ({ id: r.id, createdAt: isoOf(r.created_at) })));
  return rows.map((r) => ({
    ...shownRow(r, ledger.get(r.id)),
    keyBytes: r.key_bytes === null ? null : Number(r.key_bytes),
    valueBytes: r.value_bytes === null ? null : Number(r.value_bytes),
    headerCount: headerCount(r.msg_headers),
    cursor: r.cursor,
  }));
}

const shownRow = (r: ChRow, l: LedgerRow | undefined): ClickHouseLetter => ({
  id: r.id,
  consumerGroup: r.consumer_group,
  topic: r.topic,
  partition: Number(r.msg_partition),
  offset: r.msg_offset,
  reason: r.reason,
  createdAt: isoOf(r.created_at),
  replayedAt: l?.replayed_at ?? null,
  replayedOffset: l?.replayed_offset ?? null,
  replayClaimedAt: l?.replay_claimed_at ?? null,
});

type KeptRow = ChRow & { msg_key_base64: string; msg_value_base64: string; msg_key_null: number | string | null; msg_value_null: number | string };
export type ClickHouseLetterWithMessage = ClickHouseLetter & { key: Buffer | null; value: Buffer | null; headers: unknown; claimAgeMs: number | null; message: ReplayableLetter["message"] };

/** One letter with its message (key and value as bytes, headers as kept) and its replay state; undefined: none. */
export async function clickHouseLetter(ch: ClickHouseKitClient, pg: Queryable, id: string): Promise<ClickHouseLetterWithMessage | undefined> {
  // Two reads by a key each (a granule of each part): the id's coordinates, then the letter by them.
  const [at] = await ch.query<{ consumer_group: string; topic: string; msg_partition: number; msg_offset: string }>(
    "SELECT consumer_group, topic, msg_partition, toString(msg_offset) AS msg_offset FROM consumer_dead_letter_ids WHERE letter_id = {id:String} LIMIT 1",
    { id },
  );
  if (!at) return undefined;
  // The offset as text under another name: an alias named as its column would be what WHERE compares.
  const [found] = await ch.query<Omit<KeptRow, "msg_offset"> & { offset_text: string }>(
    `SELECT ${CH_LETTER_ID} AS id, consumer_group, topic, msg_partition, toString(msg_offset) AS offset_text, reason, toString(created_at) AS created_at,
            msg_key_base64, msg_value_base64, msg_key_null, msg_value_null, msg_headers
       FROM consumer_dead_letters FINAL
      WHERE consumer_group = {group:String} AND topic = {topic:String} AND msg_partition = {partition:Int32} AND msg_offset = {offset:Int64}
      LIMIT 1`,
    { group: at.consumer_group, topic: at.topic, partition: Number(at.msg_partition), offset: at.msg_offset },
  );
  const r: KeptRow | undefined = found && { ...found, msg_offset: found.offset_text };
  if (!r) return undefined;
  const l = (await ledgerRows(pg, [{ id, createdAt: isoOf(r.created_at) }])).get(id);
  const keyUnknown = r.msg_key_null === null && r.msg_key_base64 === "";
  const key = Number(r.msg_key_null) === 1 || keyUnknown ? null : Buffer.from(r.msg_key_base64, "base64");
  const value = Number(r.msg_value_null) === 1 ? null : Buffer.from(r.msg_value_base64, "base64");
  let headers: unknown = null;
  if (r.msg_headers !== "") headers = parsedOr(r.msg_headers);
  const partition = Number(r.msg_partition);
  let message: ReplayableLetter["message"];
  if (r.msg_headers === "") message = { problem: "its headers were not kept (set aside before migration 0030): a replay would send it without them" };
  else if (keyUnknown) message = { problem: "its key was kept as empty without telling an empty key from none (set aside before migration 0031)" };
  else {
    const out = replayMessage({ msg_partition: partition, msg_key: key, msg_value: value, msg_headers: headers });
    message = "problem" in out ? { problem: out.problem } : out;
  }
  return { ...shownRow(r, l), key, value, headers, claimAgeMs: l?.claim_age_ms ?? null, message };
}

function parsedOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** ClickHouse's letters as a replay claims and marks them: the claim and the mark are rows of the PostgreSQL ledger (./clickhouse-letter-ledger.ts). */
export function clickHouseLetterReplays(ch: ClickHouseKitClient, pg: Queryable): LetterReplays {
  return {
    async letter(id) {
      const l = await clickHouseLetter(ch, pg, id);
      return l && { consumerGroup: l.consumerGroup, topic: l.topic, partition: l.partition, offset: l.offset, replayedAt: l.replayedAt, claimAgeMs: l.claimAgeMs, message: l.message, setAsideAt: l.createdAt };
    },
    ...ledgerClaims(pg),
  };
}
