/**
 * ClickHouse's dead letters (a consumer without PostgreSQL: trading/infra/deadLetters.ts setAside) tell a
 * key or value the message did not have from an empty one, on the real ClickHouse 18.16 (migration
 * clickhouse/0031: msg_key_null, msg_value_null). Before session 52 both were '' in the base64 columns.
 * Rows written without the columns (before 0031, or by the release before during a rollout) read a
 * value as absent exactly when the reason says so, and an empty key as not known (NULL).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promClient } from "../harness/deps";
import { useServers } from "../harness/shared";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { deadLettersCounter, setAside, type DeadLetter } from "../../services/src/trading/infra/deadLetters";
import { NO_VALUE } from "../../services/src/trading/infra/kafka";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServers("clickhouse");
const group = `dead-letter-nulls-${randomBytes(4).toString("hex")}`;
let ch: ClickHouseKitClient;

beforeAll(async () => {
  ch = await migratedClickHouse(srv.env);
}, 300_000);
afterAll(async () => {
  await ch?.close();
});

type Row = { o: string; k: string; v: string; kn: number | null; vn: number };
const rows = async (): Promise<Map<number, Row>> =>
  new Map(
    (await ch.query<Row>(
      "SELECT msg_offset AS o, msg_key_base64 AS k, msg_value_base64 AS v, msg_key_null AS kn, msg_value_null AS vn FROM consumer_dead_letters WHERE consumer_group = {g:String} ORDER BY o",
      { g: group },
    )).map((r) => [Number(r.o), { ...r, kn: r.kn === null ? null : Number(r.kn), vn: Number(r.vn) }]),
  );

describe("ClickHouse dead letters: none or empty", () => {
  it("a key or value the message did not have reads 1, an empty one 0, the bytes as sent", async () => {
    const counter = deadLettersCounter(new promClient.Registry());
    const letter = (offset: number, key: Buffer | null, value: Buffer | null): DeadLetter => ({ groupId: group, topic: "t", partition: 0, offset: String(offset), key, value, headers: [], reason: value === null ? NO_VALUE : "not JSON" });
    const cases: [number, Buffer | null, Buffer | null][] = [
      [1, null, null],
      [2, Buffer.alloc(0), null],
      [3, null, Buffer.alloc(0)],
      [4, Buffer.alloc(0), Buffer.alloc(0)],
      [5, Buffer.from([0x00, 0xff]), Buffer.from("x")],
    ];
    for (const [o, k, v] of cases) await setAside({ clickhouse: ch }, letter(o, k, v), counter);
    const got = await rows();
    for (const [o, k, v] of cases) {
      const r = got.get(o)!;
      expect({ kn: r.kn, vn: r.vn, k: r.k, v: r.v }, `offset ${o}`).toEqual({ kn: k === null ? 1 : 0, vn: v === null ? 1 : 0, k: k?.toString("base64") ?? "", v: v?.toString("base64") ?? "" });
    }
  });

  it("rows written without the columns: the value told by the reason, an empty key not known", async () => {
    const created_at = new Date().toISOString().slice(0, 19).replace("T", " ");
    const old = (o: number, k: string, v: string, reason: string) => ({ consumer_group: group, topic: "t", msg_partition: 1, msg_offset: 100 + o, msg_key_base64: k, msg_value_base64: v, msg_headers: "[]", reason, created_at });
    await ch.insert("consumer_dead_letters", [old(1, "", "", NO_VALUE), old(2, "", "", "not JSON"), old(3, "eA==", "", NO_VALUE), old(4, "eA==", "eQ==", "not JSON")]);
    const got = await rows();
    expect([101, 102, 103, 104].map((o) => [got.get(o)!.kn, got.get(o)!.vn])).toEqual([
      [null, 1],
      [null, 0],
      [0, 1],
      [0, 0],
    ]);
  });
});
