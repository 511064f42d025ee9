/**
 * database-service's routes over the Kafka consumers' dead letters, admins only (a letter holds any
 * user's message). Two stores, one surface: PostgreSQL's `consumer_dead_letters` (the consumers with
 * PostgreSQL; ids are digits) and ClickHouse's (the consumers without; ids are `ch-` and 32 hex
 * digits, ./clickhouse-dead-letters.ts); the id says which.
 *   GET  /dead-letters?store=pg|ch&topic=&consumerGroup=&replayed=&before=&limit=   newest first, without the bytes
 *   GET  /dead-letters/:id               one, with its key, value and headers (base64)
 *   POST /dead-letters/:id/replay        send it back to its topic and partition, byte for byte, once
 *                                        (only with Kafka enabled)
 * A replay (./dead-letter-replay.ts: claim, send with the producer's own deadline, mark) is 404 for an
 * unknown id, 409 ALREADY_REPLAYED naming `id` for one replayed before, 409 REPLAY_IN_PROGRESS naming
 * `id` (Retry-After) while another replay holds its claim, 409 NOT_REPLAYABLE naming `id` for one whose
 * message cannot be sent as kept (trading/infra/deadLetters.ts replayMessage), naming `topic` for one whose
 * topic is not a name Kafka accepts (not claimed); 409 TOPIC_NOT_FOUND naming `topic` or `partition`
 * (Retry-After) when its topic or partition does not exist (session 55; was 502) and 503 (Retry-After) when the send failed
 * or did not end in time, the letter replayable again once Retry-After has passed: REPLAY_NOT_SENT
 * when nothing was sent (kafkajs gave up, or no Produce request was written by the deadline: a hung
 * or down broker), the claim released; REPLAY_OUTCOME_UNKNOWN when the request was written and its
 * answer did not come, the claim kept for its bound.
 */
import { alreadyReplayed, HttpError, notFound, Nullable, pageOf, ReplayedAnswer, requireIdentity, ResponseObject, Type, unavailable, type App } from "../../kit";
import { CH_CURSOR_PATTERN, CH_LETTER_ID_PATTERN, clickHouseCursor, clickHouseLetter, clickHouseLetterReplays, listClickHouseLetters } from "./clickhouse-dead-letters";
import { replayLetter, type ReplayOutcome } from "./dead-letter-replay";
import { deadLetter, listDeadLetters, postgresLetterReplays, type ConsumerDeadLetterRow } from "./dead-letters";

const Letter = ResponseObject(
  {
    id: Type.String(),
    store: Type.String({ description: "which store keeps it: pg, the transactional consumers' (orders, payments, ...; the default); ch, the analytics consumers' (usage, performance, AI chains)" }),
    consumerGroup: Type.String(),
    topic: Type.String(),
    partition: Type.Integer(),
    offset: Type.String(),
    reason: Type.String(),
    createdAt: Type.String(),
    replayedAt: Nullable(Type.String()),
    replayedOffset: Nullable(Type.String()),
    replayClaimedAt: Nullable(Type.String({ description: "a replay is sending it since (its claim); null: none" })),
  },
  { description: "an event consumer's dead letter (a message it set aside); the listing adds keyBytes, valueBytes, headerCount (null: none), one letter key, value (base64, null: none) and headers" },
);
const Listing = ResponseObject({ deadLetters: Type.Array(Letter), nextBefore: Nullable(Type.String()) });
const Replayed = Type.Intersect([ReplayedAnswer, ResponseObject({ topic: Type.String(), partition: Type.Integer(), offset: Nullable(Type.String({ description: "the offset the message was given on its topic" })) })]);
const PG_ID = "^[0-9]{1,18}$";
const LetterIdParams = Type.Object({ id: Type.String({ pattern: `${PG_ID}|${CH_LETTER_ID_PATTERN}`, description: "the dead letter's id: digits (pg) or ch- and 32 hex digits (ch)" }) });
const ListQuery = Type.Object({
  store: Type.Union([Type.Literal("pg"), Type.Literal("ch")], { default: "pg" }),
  topic: Type.Optional(Type.String({ minLength: 1, maxLength: 249 })),
  consumerGroup: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  replayed: Type.Optional(Type.Boolean()),
  before: Type.Optional(Type.String({ pattern: `${PG_ID}|${CH_CURSOR_PATTERN}`, description: "a page's nextBefore" })),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;
const shown = (r: ConsumerDeadLetterRow) => ({
  id: r.id,
  store: "pg",
  consumerGroup: r.consumer_group,
  topic: r.topic,
  partition: r.msg_partition,
  offset: r.msg_offset,
  reason: r.reason,
  createdAt: r.created_at.toISOString(),
  replayedAt: iso(r.replayed_at),
  replayedOffset: r.replayed_offset,
  replayClaimedAt: iso(r.replay_claimed_at),
});
const isClickHouseId = (id: string) => id.startsWith("ch-");

/** A replay's outcome as the route answers it (its 200, or the HttpError thrown). */
function answered(id: string, out: ReplayOutcome) {
  if ("replayed" in out) return { id, status: "replayed", ...out.replayed };
  if ("missing" in out) throw notFound(`no dead letter ${id}`);
  if ("already" in out) throw alreadyReplayed(id, `at ${out.already.toISOString()}`);
  if ("notReplayable" in out) throw new HttpError(409, "NOT_REPLAYABLE", `dead letter ${id} cannot be replayed: ${out.notReplayable}`, "id");
  if ("badTopic" in out) throw new HttpError(409, "NOT_REPLAYABLE", `dead letter ${id} cannot be replayed: its topic is not a name the message broker accepts (${out.badTopic})`, "topic");
  if ("inProgress" in out)
    throw new HttpError(409, "REPLAY_IN_PROGRESS", `dead letter ${id} is being replayed by another request; if that one stops before its mark, replay again after ${out.inProgress.retryAfterS} s`, "id", { "retry-after": String(out.inProgress.retryAfterS) });
  if ("targetMissing" in out)
    // A 409, not a 5xx: the platform works; the letter names a place that is not there (now), which the
    // request cannot change and an operator can (create the topic or its partitions).
    throw new HttpError(409, "TOPIC_NOT_FOUND", `dead letter ${id} was not sent: its ${out.targetMissing} does not exist (deleted?); it stays replayable once it does`, out.targetMissing, { "retry-after": "30" });
  if ("sendFailed" in out) throw unavailable("REPLAY_NOT_SENT", `dead letter ${id} was not sent: the message broker did not take it or did not answer; it stays replayable`, 5);
  if ("outcomeUnknown" in out)
    throw unavailable("REPLAY_OUTCOME_UNKNOWN", `dead letter ${id}'s send did not end in time and may still arrive; it is replayable again after ${out.outcomeUnknown.retryAfterS} s (which may send a second copy)`, out.outcomeUnknown.retryAfterS);
  throw unavailable("REPLAY_NOT_RECORDED", `dead letter ${id} was sent (offset ${out.notRecorded.offset ?? "unknown"}) but its replay could not be recorded; a replay after ${out.notRecorded.retryAfterS} s sends it again`, out.notRecorded.retryAfterS);
}

/** `send`: the message to its topic with the producer's own deadline; `claimStaleMs`: when a replay's claim may be taken over. */
export function registerDeadLetterRoutes(app: App, opts: { sendDeadlineMs: number; claimStaleMs: number }): void {
  const clickhouse = app.datastores.isEnabled("clickhouse");
  const chDisabled = () => notFound("no dead letters are kept in that store here");

  app.get("/dead-letters", { schema: { querystring: ListQuery, response: { 200: Listing } } }, async (req) => {
    requireIdentity(req, "admin");
    const { store, ...q } = req.query;
    const wrongCursor = q.before !== undefined && isClickHouseId(q.before.slice(q.before.indexOf("-") + 1)) !== (store === "ch");
    if (wrongCursor) throw new HttpError(400, "BAD_REQUEST", "before is a cursor of the other store's listing", "before");
    if (store === "ch") {
      if (!clickhouse) throw chDisabled();
      if (q.before !== undefined && !clickHouseCursor(q.before)) throw new HttpError(400, "BAD_REQUEST", "before must be a page's nextBefore: its seconds are past the latest a dead letter can have", "before");
      const { letters: page, nextBefore } = await listClickHouseLetters(app.clickhouse, app.pg, q);
      return { deadLetters: page.map(({ cursor: _c, ...l }) => ({ ...l, store: "ch", replayedAt: iso(l.replayedAt), replayClaimedAt: iso(l.replayClaimedAt) })), nextBefore };
    }
    const rows = await listDeadLetters(app.pg, q);
    const { page, nextBefore } = pageOf(rows, q.limit, (last) => last.id);
    return { deadLetters: page.map((r) => ({ ...shown(r), keyBytes: r.key_bytes, valueBytes: r.value_bytes, headerCount: r.header_count })), nextBefore };
  });

  app.get("/dead-letters/:id", { schema: { params: LetterIdParams, response: { 200: Letter } } }, async (req) => {
    requireIdentity(req, "admin");
    const id = req.params.id;
    if (isClickHouseId(id)) {
      if (!clickhouse) throw chDisabled();
      const l = await clickHouseLetter(app.clickhouse, app.pg, id);
      if (!l) throw notFound(`no dead letter ${id}`);
      const { message: _m, claimAgeMs: _a, ...shownLetter } = l;
      return { ...shownLetter, store: "ch", replayedAt: iso(l.replayedAt), replayClaimedAt: iso(l.replayClaimedAt), key: l.key?.toString("base64") ?? null, value: l.value?.toString("base64") ?? null };
    }
    const r = await deadLetter(app.pg, id);
    if (!r) throw notFound(`no dead letter ${id}`);
    return { ...shown(r), key: r.msg_key?.toString("base64") ?? null, value: r.msg_value?.toString("base64") ?? null, headers: r.msg_headers };
  });

  if (!app.datastores.isEnabled("redpanda")) return;
  // Disconnected with the kit's Kafka client on shutdown.
  const producer = app.kafka.deadlineProducer(opts.sendDeadlineMs);
  app.post("/dead-letters/:id/replay", { schema: { params: LetterIdParams, response: { 200: Replayed } } }, async (req) => {
    requireIdentity(req, "admin");
    const id = req.params.id;
    if (isClickHouseId(id) && !clickhouse) throw chDisabled();
    const store = isClickHouseId(id) ? clickHouseLetterReplays(app.clickhouse, app.pg) : postgresLetterReplays(app.pg);
    return answered(id, await replayLetter(store, id, (topic, m) => producer.send(topic, [m]), opts.claimStaleMs));
  });
}
