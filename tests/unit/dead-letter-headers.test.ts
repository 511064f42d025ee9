/**
 * A dead letter's headers (trading/infra/deadLetters.ts deadLetterHeaders) from what kafkajs 2.2.4
 * hands a consumer: records written header by header with kafkajs' own encoder and read back with its
 * own record decoder (protocol/recordBatch/record/v0), the fold into an object by name included. A name
 * every object answers (`constructor`, `toString`, `__proto__`...) made that fold keep the inherited
 * member as the name's first value, and deadLetterHeaders threw on it (session 52): every message
 * carrying such a header failed its batch, retried for ever. And what a replay sends (replayMessage,
 * database-service's route): written by kafkajs' producer side and read back by its consumer side, the
 * same key, value and header list.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { deadLetterHeaders, replayMessage } from "../../services/src/trading/infra/deadLetters";
import type { KafkaJs } from "../harness/deps";

const kafkajsRequire = createRequire(join(__dirname, "..", "..", "services", "package.json"));
type Writer = { writeInt8(n: number): Writer; writeVarLong(n: number): Writer; writeVarInt(n: number): Writer; writeVarIntBytes(b: Buffer | null): Writer; buffer: Buffer };
const Encoder = kafkajsRequire("kafkajs/src/protocol/encoder") as new () => Writer;
const Decoder = kafkajsRequire("kafkajs/src/protocol/decoder") as new (b: Buffer) => unknown;
const decodeRecord = kafkajsRequire("kafkajs/src/protocol/recordBatch/record/v0/decoder") as (d: unknown, ctx: object) => { key: Buffer | null; value: Buffer | null; headers: KafkaJs.IHeaders };
/** kafkajs' producer side: a message's record, its length first (protocol/recordBatch/record/v0). */
const encodeRecord = kafkajsRequire("kafkajs/src/protocol/recordBatch/record/v0") as (r: { key?: unknown; value: unknown; headers?: KafkaJs.IHeaders }) => { buffer: Buffer };
const readVarIntBytes = (b: Buffer) => (new Decoder(b) as { readVarIntBytes(): Buffer }).readVarIntBytes();

/** The headers kafkajs hands over for a record whose headers are `sent`, in that order on the wire. */
function received(sent: [string, Buffer | null][]): KafkaJs.IHeaders {
  const w = new Encoder().writeInt8(0).writeVarLong(0).writeVarInt(0).writeVarIntBytes(Buffer.from("k")).writeVarIntBytes(Buffer.from("v")).writeVarInt(sent.length);
  for (const [name, value] of sent) w.writeVarIntBytes(Buffer.from(name)).writeVarIntBytes(value);
  return decodeRecord(new Decoder(w.buffer), { firstOffset: "0", firstTimestamp: "0" }).headers;
}
const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

describe("dead-letter headers from what kafkajs hands over", () => {
  it.each(["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "isPrototypeOf", "__defineGetter__"])(
    "a header named %s is kept as sent, once per value, nothing inherited added",
    (name) => {
      const headers = received([["event-id", Buffer.from("e1")], [name, Buffer.from("x")], [name, null], ["trace", Buffer.from([0xff])]]);
      expect(deadLetterHeaders(headers)).toEqual([
        { name: "event-id", value: b64("e1") },
        { name, value: b64("x") },
        { name, value: null },
        { name: "trace", value: b64(Buffer.from([0xff])) },
      ]);
    },
  );

  it("a name's values in the order sent; names in the order first seen, array-index names first (what the fold loses)", () => {
    const sent: [string, Buffer | null][] = [["b", Buffer.from("1")], ["a", Buffer.from("2")], ["7", Buffer.from("3")], ["b", null], ["a", Buffer.alloc(0)], ["2", Buffer.from("4")]];
    expect(deadLetterHeaders(received(sent))).toEqual([
      { name: "2", value: b64("4") },
      { name: "7", value: b64("3") },
      { name: "b", value: b64("1") },
      { name: "b", value: null },
      { name: "a", value: b64("2") },
      { name: "a", value: "" },
    ]);
  });

  it("no headers, and a producer's own object (strings, arrays)", () => {
    expect(deadLetterHeaders(undefined)).toEqual([]);
    expect(deadLetterHeaders({ a: "x", b: [Buffer.from("y"), "z"] })).toEqual([{ name: "a", value: b64("x") }, { name: "b", value: b64("y") }, { name: "b", value: b64("z") }]);
  });
});

describe("a replay's message (replayMessage) through kafkajs' encoder and decoder", () => {
  it("the same key, value and headers: names every object has, array-index names, a name twice, bytes that are not UTF-8", () => {
    const sent: [string, Buffer | null][] = [["5", Buffer.from("i")], ["event-id", Buffer.from("e")], ["__proto__", Buffer.from("p")], ["constructor", Buffer.alloc(0)], ["x", Buffer.from([0xff, 0x00])], ["x", Buffer.from("2")]];
    const kept = deadLetterHeaders(received(sent));
    expect(kept.map((h) => h.name)).toEqual(["5", "event-id", "__proto__", "constructor", "x", "x"]);
    for (const [key, value] of [[Buffer.from([0x00, 0xfe]), Buffer.from("v")], [null, null], [Buffer.alloc(0), Buffer.alloc(0)]] as const) {
      const out = replayMessage({ msg_partition: 3, msg_key: key, msg_value: value, msg_headers: JSON.parse(JSON.stringify(kept)) });
      if (!("message" in out)) throw new Error(out.problem);
      expect(out.message.partition).toBe(3);
      const back = decodeRecord(new Decoder(readVarIntBytes(encodeRecord(out.message).buffer)), { firstOffset: "0", firstTimestamp: "0" });
      expect([back.key, back.value]).toEqual([key, value]);
      expect(deadLetterHeaders(back.headers)).toEqual(kept);
    }
  });

  it("refuses what it cannot send as kept", () => {
    const problem = (msg_headers: unknown) => {
      const out = replayMessage({ msg_partition: 0, msg_key: null, msg_value: Buffer.from("v"), msg_headers });
      return "problem" in out ? out.problem : "sent";
    };
    expect(problem(null)).toMatch(/not kept/);
    expect(problem([{ name: "a", value: null }])).toMatch(/"a" has no value/);
    expect(problem([{ name: "a", value: "not base64!" }])).toMatch(/not base64/);
    expect(problem([{ name: 1, value: "" }])).toMatch(/header 0 is not/);
    expect(problem([null])).toMatch(/header 0 is not/);
    expect(problem("[]")).toMatch(/not a list/);
    expect(problem([])).toBe("sent");
  });
});
