/**
 * database-service's routes over the Kafka consumers' dead letters in PostgreSQL (`consumer_dead_letters`),
 * admins only (a letter holds any user's message):
 *   GET  /dead-letters?topic=&consumerGroup=&replayed=&before=&limit=   newest first, without the bytes
 *   GET  /dead-letters/:id               one, with its key, value and headers (base64)
 *   POST /dead-letters/:id/replay        send it back to its topic and partition, byte for byte, once
 *                                        (only with Kafka enabled)
 * A replay is 404 for an unknown id, 409 ALREADY_REPLAYED naming `id` for one replayed before, 409
 * NOT_REPLAYABLE naming `id` for one whose message cannot be sent as kept (trading/infra/deadLetters.ts
 * replayMessage). ClickHouse's dead letters (consumers without PostgreSQL) are not replayed here.
 */
import { alreadyReplayed, DeadLetterIdParams, HttpError, notFound, Nullable, pageOf, ReplayedAnswer, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { deadLetter, listDeadLetters, replayDeadLetter, type ConsumerDeadLetterRow } from "./dead-letters";

const Letter = ResponseObject(
  { id: Type.String(), consumerGroup: Type.String(), topic: Type.String(), partition: Type.Integer(), offset: Type.String(), reason: Type.String(), createdAt: Type.String(), replayedAt: Nullable(Type.String()), replayedOffset: Nullable(Type.String()) },
  { description: "a Kafka consumer's dead letter; the listing adds keyBytes, valueBytes, headerCount (null: none), one letter key, value (base64, null: none) and headers" },
);
const Listing = ResponseObject({ deadLetters: Type.Array(Letter), nextBefore: Nullable(Type.String()) });
const Replayed = Type.Intersect([ReplayedAnswer, ResponseObject({ topic: Type.String(), partition: Type.Integer(), offset: Nullable(Type.String({ description: "the offset the message was given on its topic" })) })]);
const ListQuery = Type.Object({
  topic: Type.Optional(Type.String({ minLength: 1, maxLength: 249 })),
  consumerGroup: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  replayed: Type.Optional(Type.Boolean()),
  before: Type.Optional(Type.String({ pattern: "^[0-9]{1,18}$", description: "a page's nextBefore" })),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
});

const shown = (r: ConsumerDeadLetterRow) => ({
  id: r.id,
  consumerGroup: r.consumer_group,
  topic: r.topic,
  partition: r.msg_partition,
  offset: r.msg_offset,
  reason: r.reason,
  createdAt: r.created_at.toISOString(),
  replayedAt: r.replayed_at?.toISOString() ?? null,
  replayedOffset: r.replayed_offset,
});

export function registerDeadLetterRoutes(app: App): void {
  app.get("/dead-letters", { schema: { querystring: ListQuery, response: { 200: Listing } } }, async (req) => {
    requireIdentity(req, "admin");
    const rows = await listDeadLetters(app.pg, req.query);
    const { page, nextBefore } = pageOf(rows, req.query.limit, (last) => last.id);
    return { deadLetters: page.map((r) => ({ ...shown(r), keyBytes: r.key_bytes, valueBytes: r.value_bytes, headerCount: r.header_count })), nextBefore };
  });

  app.get("/dead-letters/:id", { schema: { params: DeadLetterIdParams, response: { 200: Letter } } }, async (req) => {
    requireIdentity(req, "admin");
    const r = await deadLetter(app.pg, req.params.id);
    if (!r) throw notFound(`no dead letter ${req.params.id}`);
    return { ...shown(r), key: r.msg_key?.toString("base64") ?? null, value: r.msg_value?.toString("base64") ?? null, headers: r.msg_headers };
  });

  if (!app.datastores.isEnabled("redpanda")) return;
  app.post("/dead-letters/:id/replay", { schema: { params: DeadLetterIdParams, response: { 200: Replayed } } }, async (req) => {
    requireIdentity(req, "admin");
    const id = req.params.id;
    const out = await replayDeadLetter(app.pg, id, async (topic, m) => (await app.kafka.send(topic, [m]))[0]?.baseOffset ?? null);
    if (!out) throw notFound(`no dead letter ${id}`);
    if ("already" in out) throw alreadyReplayed(id, `at ${out.already.toISOString()}`);
    if ("notReplayable" in out) throw new HttpError(409, "NOT_REPLAYABLE", `dead letter ${id} cannot be replayed: ${out.notReplayable}`, "id");
    return { id, status: "replayed", ...out.replayed };
  });
}
