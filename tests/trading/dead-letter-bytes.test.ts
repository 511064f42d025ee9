/**
 * A dead letter holds the message as it was received, whatever the reason it was set aside
 * (trading/infra/kafka.ts consumeDecoded, every consumer's): its value and key byte for byte, against a
 * real Kafka, PostgreSQL (the trading-engine's store) and ClickHouse (ai-chain-analytics', a consumer
 * without PostgreSQL). Before session 51, the bad bars of a candles batch were set aside re-serialised
 * from their JSON: a price of 0.1000000000000000055511151231257827 was written as 0.1, and an
 * operator's hand replay of the dead letter passed the check that refused it and stored 0.1.
 * Every JSON text here is spaced as no JSON.stringify writes it, so any re-serialisation shows.
 * Its Kafka headers too (migrations postgres/0496, clickhouse/0030; not kept before session 51), in
 * order, values that are not UTF-8 and a name sent twice among them; and a message without a value
 * (skipped before session 51, never set aside: the platform's topics are not compacted) is set aside
 * with its key and headers, the group's offset committed past it. A header named `constructor` stuck
 * every consumer's partition before session 52 (tests/unit/dead-letter-headers.test.ts).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, defineService, type Service } from "../../services/src/kit";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { TOPICS } from "../../services/src/trading/events";
import { PoisonMessageError, type DeadLetterHeader } from "../../services/src/trading/infra/deadLetters";
import { consumeDecoded, consumerEnv, NO_VALUE } from "../../services/src/trading/infra/kafka";
import { candleBatchOf } from "../../services/src/trading/infra/topicSchemas";
import { migrateAll, migratedClickHouse } from "../helpers/schemas";
import { committedPast, validMessage } from "../hostile/poison";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "kafka", "clickhouse");
const run = randomBytes(3).toString("hex").toUpperCase();
const sym = (tag: string) => `DL${tag}${run}`;
/** Symbols the consumers under test refuse: at decoding, and in their handler (a failure that is not an outage). */
const DECODE_REFUSED = sym("DEC");
const HANDLER_REFUSED = sym("HND");
const INEXACT = "0.1000000000000000055511151231257827";
const WAIT_MS = 240_000;

const seen = new Set<string>();
const consumerOf = (name: "trading-engine" | "ai-chain-analytics") =>
  defineService({
    name,
    config: consumerEnv,
    async register(ctx) {
      await consumeDecoded(ctx, {
        groupId: `dead-letter-bytes-${name}-${run}`,
        topics: [TOPICS.candles],
        // Only what arrives once it has joined (the topic holds other tests' bars): the test's marker tells when.
        fromBeginning: false,
        decode: (m) => {
          const batch = candleBatchOf(m.json);
          if (batch.symbol === DECODE_REFUSED) throw new PoisonMessageError("this symbol is refused at decoding");
          return batch;
        },
        handle: async (batches) => {
          if (batches.some((b) => b.symbol === HANDLER_REFUSED)) throw new Error("this symbol is refused by the handler");
          for (const b of batches) seen.add(`${name} ${b.symbol}`);
        },
      });
    },
  });

/** `o` as JSON text spaced after every colon and comma, numbers given as raw literals kept as written. */
const spaced = (o: unknown, literals: Record<string, string> = {}): string => {
  let text = JSON.stringify(o, null, 1).replace(/\n\s*/g, " ");
  for (const [hole, literal] of Object.entries(literals)) text = text.replace(`"${hole}"`, literal);
  return text;
};
const tupleOf = (b: Record<string, unknown>, minutes = 0) => [Number(b.openTime) + minutes * 60_000, Number(b.closeTime) + minutes * 60_000, b.open, b.high, b.low, b.close, b.volume];
const batchOf = (symbol: string, bars: unknown[]) => ({ v: 2, symbol, interval: "1m", bars });

interface Sent {
  name: string;
  /** null: a message without a key. */
  key: Buffer | null;
  /** null: a message without a value. */
  value: Buffer | null;
  /** Why it is set aside, as the reason says. */
  reason: RegExp;
}

function messages(): Sent[] {
  const bar = (symbol: string) => validMessage(TOPICS.candles, symbol);
  const b = bar(sym("INX"));
  const utf8 = (s: string) => Buffer.from(s);
  return [
    {
      name: "a batch's bar holding a price its double does not carry (the other bars applied)",
      key: utf8(sym("INX")),
      value: utf8(spaced(batchOf(sym("INX"), [tupleOf(b, -2), [...tupleOf(b, -1).slice(0, 2), "INEXACT", ...tupleOf(b, -1).slice(3)], tupleOf(b)]), { INEXACT })),
      reason: /^market\.candles message: 1 of 3 bars refused \(the message is set aside as received\): bars\.1\.open: a number a double does not carry exactly.*; the rest was applied$/,
    },
    {
      name: "a one-bar message holding that price (refused whole)",
      key: utf8(sym("ONE")),
      value: utf8(spaced({ ...bar(sym("ONE")), close: "INEXACT" }, { INEXACT })),
      reason: /market\.candles message: close: a number a double does not carry exactly/,
    },
    {
      name: "invalid UTF-8, key and value",
      key: Buffer.from([0x44, 0x4c, 0xff, 0xc0, 0xaf]),
      value: Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0xc0, 0xaf, 0x00]),
      reason: /message is not UTF-8 text/,
    },
    {
      name: "one byte that is not UTF-8 inside a string of a valid bar",
      key: utf8(sym("UTF")),
      value: Buffer.concat([utf8('{ "note": "'), Buffer.from([0xe9]), utf8(`", ${spaced(bar(sym("UTF"))).slice(1)}`)]),
      reason: /message is not UTF-8 text/,
    },
    {
      name: "refused at decoding",
      key: utf8(DECODE_REFUSED),
      value: utf8(spaced(batchOf(DECODE_REFUSED, [tupleOf(bar(DECODE_REFUSED))]))),
      reason: /PoisonMessageError: this symbol is refused at decoding/,
    },
    {
      name: "refused by the handler, with a bad bar split off",
      key: utf8(HANDLER_REFUSED),
      value: utf8(spaced(batchOf(HANDLER_REFUSED, [tupleOf(bar(HANDLER_REFUSED), -1), [...tupleOf(bar(HANDLER_REFUSED)).slice(0, 6), "INEXACT"]]), { INEXACT })),
      reason: /1 of 2 bars refused .*bars\.1\.volume: a number a double does not carry exactly.*; the rest: Error: this symbol is refused by the handler$/,
    },
    {
      name: "no value (a tombstone, on a topic that is not compacted)",
      key: utf8(sym("NUL")),
      value: null,
      reason: new RegExp(`^${NO_VALUE.replace(/[()]/g, "\\$&")}$`),
    },
    {
      name: "no key, an empty value (ClickHouse told neither from its empty twin before session 52)",
      key: null,
      value: Buffer.alloc(0),
      reason: /^message is not JSON$/,
    },
  ];
}

/**
 * Each message's headers, as a producer sends them (a name sent twice is an array of its values) and
 * as the dead letter lists them: the trace context and event id the platform's producers send
 * (outboxRows.ts), a value that is not UTF-8, an empty one, a name sent twice, a name holding U+0000, a name
 * every object answers (kafkajs sends no header without a value: its encoder throws).
 */
function headersOf(m: Sent): { sent: Record<string, Buffer | string | Buffer[]>; kept: DeadLetterHeader[] } {
  const notUtf8 = Buffer.from([0xff, 0x00, 0xc0, 0xaf, 0x80]);
  const twice = [Buffer.from([0xfe]), Buffer.from("second")];
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const b64 = (v: Buffer | string) => Buffer.from(v).toString("base64");
  return {
    sent: { traceparent, "event-id": m.name, "x-bytes": notUtf8, "x-twice": twice, "x-empty": Buffer.alloc(0), "x-nul\u0000name": "v", constructor: "c" },
    kept: [
      { name: "traceparent", value: b64(traceparent) },
      { name: "event-id", value: b64(m.name) },
      { name: "x-bytes", value: b64(notUtf8) },
      { name: "x-twice", value: b64(twice[0]) },
      { name: "x-twice", value: b64(twice[1]) },
      { name: "x-empty", value: "" },
      // PostgreSQL's jsonb refuses U+0000 (the dead letter could not be written): the column is json.
      { name: "x-nul\u0000name", value: b64("v") },
      // A name every object answers: kafkajs' fold kept the inherited member as its first value, on which
      // deadLetterHeaders threw, failing every batch holding the message (session 52).
      { name: "constructor", value: b64("c") },
    ],
  };
}

let pool: InstanceType<typeof pg.Pool>;
let ch: ClickHouseKitClient;
const services: Service<any>[] = [];
let producer: ReturnType<InstanceType<typeof kafkajs.Kafka>["producer"]>;

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  ch = await migratedClickHouse(srv.env);
  producer = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).producer();
  await producer.connect();
}, 300_000);

afterAll(async () => {
  for (const s of services) await s.close();
  await producer?.disconnect();
  await ch?.close();
  await pool?.end();
}, 60_000);

describe("dead letters keep the message as received", () => {
  it("an inexact price, invalid UTF-8, a refusal at decoding or by the handler, no value: value, key and headers as received, in PostgreSQL and ClickHouse", async () => {
    const env = { ...srv.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" };
    for (const name of ["trading-engine", "ai-chain-analytics"] as const) services.push(await createService(consumerOf(name), { env, defaultMetrics: false }));
    // fromBeginning false: a consumer reads from where it joined. A marker bar, sent until both consumers applied one, says they have.
    const marker = sym("MRK");
    await waitUntil("both consumers joined", async () => {
      await producer.send({ topic: TOPICS.candles, messages: [{ key: marker, value: JSON.stringify(validMessage(TOPICS.candles, marker)) }] });
      return seen.has(`trading-engine ${marker}`) && seen.has(`ai-chain-analytics ${marker}`);
    }, WAIT_MS, 1000);

    const sent = messages();
    const at = new Map<string, Sent>();
    for (const m of sent) {
      const [r] = await producer.send({ topic: TOPICS.candles, messages: [{ key: m.key, value: m.value, headers: headersOf(m).sent }] });
      at.set(`${r.partition}/${r.baseOffset}`, m);
    }
    // The good bars of the inexact batch were applied (split off, not the whole batch set aside).
    await waitUntil("the inexact batch's good bars applied", async () => seen.has(`trading-engine ${sym("INX")}`) && seen.has(`ai-chain-analytics ${sym("INX")}`), WAIT_MS);

    type Letter = { at: string; key: Buffer | null; value: Buffer | null; headers: unknown; reason: string };
    const lettersOf: Record<string, () => Promise<Letter[]>> = {
      "trading-engine": async () =>
        (await pool.query("SELECT msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason FROM consumer_dead_letters WHERE consumer_group = $1", [`dead-letter-bytes-trading-engine-${run}`])).rows.map((r) => ({
          at: `${r.msg_partition}/${r.msg_offset}`, key: r.msg_key, value: r.msg_value, headers: r.msg_headers, reason: r.reason,
        })),
      "ai-chain-analytics": async () =>
        (await ch.query<{ p: number; o: string; k: string; kn: number; v: string; vn: number; h: string; why: string }>(
          "SELECT msg_partition AS p, msg_offset AS o, any(msg_key_base64) AS k, any(msg_key_null) AS kn, any(msg_value_base64) AS v, any(msg_value_null) AS vn, any(msg_headers) AS h, any(reason) AS why FROM consumer_dead_letters WHERE consumer_group = {g:String} GROUP BY p, o",
          { g: `dead-letter-bytes-ai-chain-analytics-${run}` },
        // The base64 columns hold no null: msg_key_null and msg_value_null (migration 0031) tell none from empty.
        )).map((r) => ({ at: `${r.p}/${r.o}`, key: Number(r.kn) ? null : Buffer.from(r.k, "base64"), value: Number(r.vn) ? null : Buffer.from(r.v, "base64"), headers: JSON.parse(r.h), reason: r.why })),
    };
    for (const [consumer, letters] of Object.entries(lettersOf)) {
      const rows = await waitUntil(`${consumer}: every message set aside`, async () => {
        const r = await letters();
        return r.length >= sent.length ? r : undefined;
      }, WAIT_MS, 500);
      expect(rows.map((r) => at.get(r.at)?.name ?? r.at).sort(), consumer).toEqual(sent.map((m) => m.name).sort());
      for (const r of rows) {
        const m = at.get(r.at)!;
        expect(r.reason, `${consumer}: ${m.name}`).toMatch(m.reason);
        if (m.value === null) expect(r.value, `${consumer}: ${m.name}: no value`).toBeNull();
        else expect(r.value?.equals(m.value), `${consumer}: ${m.name}: value ${r.value?.toString("hex")}`).toBe(true);
        if (m.key === null) expect(r.key, `${consumer}: ${m.name}: no key`).toBeNull();
        else expect(r.key?.equals(m.key), `${consumer}: ${m.name}: key ${r.key?.toString("hex")}`).toBe(true);
        expect(r.headers, `${consumer}: ${m.name}: headers`).toEqual(headersOf(m).kept);
      }
    }
    // The message without a value is behind the group's committed offset (consumption went on past it).
    const [noValueAt] = [...at].find(([, m]) => m.value === null)!;
    const [partition, offset] = noValueAt.split("/").map(Number);
    const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      for (const name of ["trading-engine", "ai-chain-analytics"]) {
        await waitUntil(`${name}: committed past the message without a value`, () => committedPast(admin, `dead-letter-bytes-${name}-${run}`, TOPICS.candles, partition, offset), WAIT_MS, 500);
      }
    } finally {
      await admin.disconnect();
    }
  }, 600_000);
});
