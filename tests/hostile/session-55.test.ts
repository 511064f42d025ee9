/**
 * Session 55's hostile round on what sessions 53 and 54 added, on real servers (PostgreSQL, Redis,
 * Kafka, ClickHouse; the card processor the fake behind the `stripe` SDK; two gateways, one with the
 * fast lane and one without, GATEWAY_FAST_LANE set on each), every answer judged by ./oracle.ts: no
 * 5xx, no stack trace, file path, driver text or internal name, JSON errors in the platform's shape
 * naming the field. Each case is a request, who sends it, and the status and field it must get:
 * - database-service's dead letters of both stores (`store=ch`: ClickHouse's, ids `ch-` and 32 hex
 *   digits, cursors `<seconds>-<id>`): cursors forged and tampered, ids out of their pattern, the
 *   replayed filter paged, two replays of one letter at once, a letter of a topic that is not there,
 *   credentials forged (alg none, expired, wrong key, tampered) and a trader on the admin routes;
 * - payment-service's held charges (one Idempotency-Key at once and with other bodies while the
 *   processor answers another amount), refunds (numbers, one key at once, another body under one key),
 *   the settle; billing-service's plans, subscriptions and invoices (`chargeHeldAt`) with another
 *   user's ids; revenue-analytics' instants at and past their range;
 * - the gateway's /api/health and /api/docs with hostile queries, methods and spoofed forwarding and
 *   identity headers, on both gateways;
 * - every service's answer to a malformed request after an answered one on a kept-alive connection,
 *   and to one pipelined behind a request still being handled.
 * Found and fixed at the root: a CONNECT pipelined behind a request being handled replaced that
 * request's answer with its 405, on every service (kit client-errors.ts); a dead letter of the broker's
 * own topic (__consumer_offsets) was a 503 REPLAY_NOT_SENT "it stays replayable", though the broker
 * refuses it every time (now 409 NOT_REPLAYABLE naming topic: database-service dead-letter-replay.ts);
 * a header kept without a value was refused naming kafkajs, an internal name (trading/infra/deadLetters.ts);
 * three deleted-customers passes at once each counted the one customer deleted (customersDeleted 1 x3:
 * payment-service deleted-customers.ts, now counted by the pass that records it).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createService, SignJWT } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { clickHouseLetterId } from "../../services/src/services/database-service/clickhouse-dead-letters";
import { kafkajs } from "../harness";
import { deadWebhookLetter } from "../helpers/dead-letters";
import { rawRequest } from "../helpers/raw-http";
import { checkStatusCases, rawJudged, type JudgedAnswer, type StatusCase } from "./oracle";
import { SERVICES, useRedTeamPlatform, type Ask } from "./red-team-platform";

const rig = useRedTeamPlatform("session-55");
const { srv, fake, gateways, who, failures, gw, account } = rig;

type Case = StatusCase;
/** Each case through `gw` with `o`: its status and the field its error names (./oracle.ts checkStatusCases). */
const check = (cases: Case[], o: Omit<Ask, "body" | "token"> = {}) => checkStatusCases(cases, (as, method, path, body) => gw(as, method, path, { ...o, body }), failures);

const chText = (at: Date) => at.toISOString().slice(0, 19).replace("T", " ");
/** A ClickHouse dead letter as trading/infra/deadLetters.ts writes one (the consumers without PostgreSQL): its id. */
async function clickHouseLetter(o: { topic?: string; group?: string; offset?: number; at?: Date; partition?: number; headers?: string } = {}): Promise<string> {
  const group = o.group ?? `h55-${randomBytes(3).toString("hex")}`;
  const topic = o.topic ?? `h55-${randomBytes(4).toString("hex")}`;
  const offset = o.offset ?? 7;
  await rig.p.services.get("database-service")!.ctx.app.clickhouse.insert("consumer_dead_letters", [
    { consumer_group: group, topic, msg_partition: o.partition ?? 0, msg_offset: offset, msg_key_base64: "aw==", msg_value_base64: Buffer.from('{"x":1}').toString("base64"), msg_key_null: 0, msg_value_null: 0, msg_headers: o.headers ?? "[]", reason: "h55", created_at: chText(o.at ?? new Date()) },
  ]);
  return clickHouseLetterId(group, topic, o.partition ?? 0, String(offset));
}

/** A PostgreSQL consumer dead letter: its id. */
async function postgresLetter(topic = `h55-${randomBytes(4).toString("hex")}`, o: { partition?: number; headers?: string } = {}): Promise<string> {
  const { rows } = await rig.p.pool.query<{ id: string }>(
    "INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason) VALUES ($1, $2, $3, 7, 'k', '{\"x\":1}', $4::json, 'h55') RETURNING id::text AS id",
    [`h55-${randomBytes(3).toString("hex")}`, topic, o.partition ?? 0, o.headers ?? "[]"],
  );
  return rows[0].id;
}

async function topicOfOne(): Promise<string> {
  const topic = `h55-r-${randomBytes(3).toString("hex")}`;
  const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: 0 }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  return topic;
}

const HEX32 = "0123456789abcdef0123456789abcdef";

describe("database-service's dead letters, both stores (/api/database/dead-letters)", () => {
  it("cursors forged and tampered, in each store's shape and the other's: a 400 naming before, or a page; never the datastore's error", async () => {
    const now = Math.floor(Date.now() / 1000);
    const list = (q: string) => `/api/database/dead-letters?${q}`;
    const cases: Case[] = [];
    // ClickHouse's cursor: seconds (up to 12 digits by the pattern) and an id.
    for (const seconds of ["0", "1", String(now), "4294967295", "000000000000"])
      cases.push(["admin", "GET", list(`store=ch&before=${seconds}-ch-${HEX32}`), undefined, 200, undefined]);
    // (Seconds past ClickHouse's DateTime, 2^32 - 1: no page's cursor, a 400 since session 56.)
    for (const seconds of ["4294967296", "9999999999", "99999999999", "999999999999"])
      cases.push(["admin", "GET", list(`store=ch&before=${seconds}-ch-${HEX32}`), undefined, 400, "before"]);
    for (const [label, before] of [
      ["13 digits", `9999999999999-ch-${HEX32}`], ["no seconds", `-ch-${HEX32}`], ["upper-case hex", `1-ch-${HEX32.toUpperCase()}`], ["31 hex", `1-ch-${HEX32.slice(1)}`],
      ["33 hex", `1-ch-${HEX32}0`], ["sign", `+1-ch-${HEX32}`], ["negative", `-1-ch-${HEX32}`], ["NUL", `1-ch-${HEX32}%00`], ["SQL", `1-ch-${HEX32}'%20OR%201=1`],
      ["ClickHouse injection", `1-ch-${HEX32}')%20UNION%20ALL%20SELECT%201--`], ["CH- upper", `1-CH-${HEX32}`], ["space", `1%20-ch-${HEX32}`], ["two cursors", `1-ch-${HEX32}&before=2-ch-${HEX32}`],
    ] as const)
      cases.push(["admin", "GET", list(`store=ch&before=${before}`), undefined, 400, "before"]);
    // Each store's cursor given to the other's listing.
    cases.push(["admin", "GET", list("store=ch&before=12"), undefined, 400, "before"], ["admin", "GET", list(`store=pg&before=1-ch-${HEX32}`), undefined, 400, "before"], ["admin", "GET", list(`before=1-ch-${HEX32}`), undefined, 400, "before"]);
    for (const before of ["0", "1", "999999999999999999", "000000000000000001"]) cases.push(["admin", "GET", list(`store=pg&before=${before}`), undefined, 200, undefined]);
    for (const before of ["9223372036854775808", "-1", "1e3", "0x10", "1.0", "%EF%BC%91"]) cases.push(["admin", "GET", list(`store=pg&before=${before}`), undefined, 400, "before"]);
    // The store itself.
    for (const store of ["CH", "clickhouse", "pg,ch", "", "%00", "ch%00"]) cases.push(["admin", "GET", list(`store=${store}`), undefined, 400, "store"]);
    cases.push(["admin", "GET", list("store=ch&store=pg"), undefined, 400, "store"]);
    // The filters on ClickHouse's listing, the replayed one paged.
    for (const [q, status, field] of [
      ["replayed=true&limit=1", 200, undefined], ["replayed=false&limit=200", 200, undefined], ["replayed=1", 400, "replayed"], ["replayed=yes", 400, "replayed"],
      [`topic=${encodeURIComponent("x' OR '1'='1")}`, 200, undefined], [`topic=${encodeURIComponent("x\\' OR 1=1 --")}`, 200, undefined], [`consumerGroup=${encodeURIComponent("{group:String}")}`, 200, undefined],
      [`topic=${encodeURIComponent("\u{1F600}")}`, 200, undefined], ["topic=%ED%A0%80", 400, "url"], ["topic=%C0%AF", 400, "url"], ["consumerGroup=%F0%80%80%AF", 400, "url"], ["topic=%E2%80%AE", 200, undefined], ["topic=a%00b", 400, "topic"], [`topic=${"t".repeat(250)}`, 400, "topic"], ["limit=0", 400, "limit"], ["limit=201", 400, "limit"], ["limit=1e1", 400, "limit"],
    ] as const)
      cases.push(["admin", "GET", list(`store=ch&${q}`), undefined, status, field]);
    await check(cases);
  }, 300_000);

  it("pages of ClickHouse's letters by the cursor each gives: every letter once, newest first; replayed filter paged the same", async () => {
    const group = `h55-page-${randomBytes(3).toString("hex")}`;
    const ids: string[] = [];
    const base = Date.now() - 60_000;
    for (let i = 0; i < 5; i++) ids.push(await clickHouseLetter({ group, offset: i, at: new Date(base + (i % 3) * 1_000) }));
    for (const q of ["", "&replayed=false"]) {
      const seen: string[] = [];
      let before = "";
      for (let page = 0; page < 10; page++) {
        const r = await gw("admin", "GET", `/api/database/dead-letters?store=ch&consumerGroup=${group}&limit=2${q}${before ? `&before=${before}` : ""}`);
        expect(r.status, r.text).toBe(200);
        seen.push(...r.json.deadLetters.map((l: { id: string }) => l.id));
        if (r.json.nextBefore === null) break;
        before = r.json.nextBefore;
      }
      expect([...seen].sort(), q).toEqual([...ids].sort());
      expect(new Set(seen).size).toBe(ids.length);
    }
    // The latest second ClickHouse's DateTime holds (2^32 - 1) is later than every letter: every letter
    // listed. Past it (up to the pattern's 12 digits) no page's cursor: a 400 naming before (session 56).
    for (const seconds of ["4294967295", "4294967296", "4294967297", "9999999999", "999999999999"]) {
      const r = await gw("admin", "GET", `/api/database/dead-letters?store=ch&consumerGroup=${group}&before=${seconds}-ch-${"f".repeat(32)}`);
      expect.soft([r.status, r.json?.deadLetters?.length ?? r.json?.error?.field], `${seconds}: ${r.text.slice(0, 200)}`).toEqual(seconds === "4294967295" ? [200, ids.length] : [400, "before"]);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it("ids out of the pattern on the letter and its replay, and credentials: forged, expired, alg=none, tampered, a trader; as an admin, one letter of each store", async () => {
    const chId = await clickHouseLetter();
    const pgId = await postgresLetter();
    const secret = new TextEncoder().encode(rig.p.env.JWT_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const sign = (key: Uint8Array, iat: number, exp: number, sub = who.admin.id) =>
      new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(sub).setJti("j").setIssuer("ai-trading/user-management").setAudience("ai-trading").setIssuedAt(iat).setExpirationTime(exp).sign(key);
    const forged = {
      wrongKey: await sign(randomBytes(64), now, now + 300),
      expired: await sign(secret, now - 7_200, now - 3_600),
      future: await sign(secret, now + 3_600, now + 7_200),
      algNone: `${enc({ alg: "none", typ: "JWT" })}.${enc({ sub: who.admin.id, role: "admin", iss: "ai-trading/user-management", aud: "ai-trading", iat: now, exp: now + 300 })}.`,
      tampered: `${who.alice.token.split(".")[0]}.${enc({ sub: who.alice.id, role: "admin", iss: "ai-trading/user-management", aud: "ai-trading", iat: now, exp: now + 300 })}.${who.alice.token.split(".")[2]}`,
      hs512: `${enc({ alg: "HS512", typ: "JWT" })}.${who.alice.token.split(".")[1]}.${who.alice.token.split(".")[2]}`,
    };
    const cases: Case[] = [];
    for (const id of [chId, pgId]) {
      for (const [method, path] of [["GET", `/api/database/dead-letters/${id}`], ["POST", `/api/database/dead-letters/${id}/replay`], ["GET", "/api/database/dead-letters?store=ch"]] as const) {
        cases.push(["alice", method, path, undefined, 403, undefined], ["none", method, path, undefined, 401, undefined]);
        for (const token of Object.values(forged)) cases.push([token, method, path, undefined, 401, undefined]);
      }
      cases.push(["admin", "GET", `/api/database/dead-letters/${id}`, undefined, 200, undefined]);
    }
    // (Spoofed identity headers beside a trader's token: the gateway sets its own.)
    for (const [method, path] of [["GET", `/api/database/dead-letters/${chId}`], ["POST", `/api/database/dead-letters/${chId}/replay`]] as const) {
      const r = await gw("alice", method, path, { headers: { "x-user-id": who.admin.id, "x-user-role": "admin", "x-auth-method": "jwt", "x-forwarded-for": "127.0.0.1", forwarded: "for=127.0.0.1" } });
      expect.soft(r.status, `${method} ${path} spoofed`).toBe(403);
    }
    const bad = (seg: string, field: string): Case[] => [
      ["admin", "GET", `/api/database/dead-letters/${seg}`, undefined, 400, field],
      ["admin", "POST", `/api/database/dead-letters/${seg}/replay`, undefined, 400, field],
    ];
    for (const seg of [`CH-${HEX32}`, `ch-${HEX32.toUpperCase()}`, `ch-${HEX32.slice(1)}`, `ch-${HEX32}0`, `ch_${HEX32}`, `ch-${HEX32.slice(1)}g`, "ch-", `%20ch-${HEX32}`, `ch-${HEX32}%20`, `ch-${HEX32}%0A`, `1-ch-${HEX32}`, `ch-${"0".repeat(32)}'%20OR%201=1`]) cases.push(...bad(seg, "id"));
    cases.push(
      ["admin", "GET", `/api/database/dead-letters/ch-${HEX32}`, undefined, 404, undefined], ["admin", "POST", `/api/database/dead-letters/ch-${HEX32}/replay`, undefined, 404, undefined],
      ["admin", "GET", `/api/database/dead-letters/ch-${"f".repeat(32)}`, undefined, 404, undefined], ["admin", "GET", `/api/database/dead-letters/ch%2D${HEX32}`, undefined, 404, undefined], ["admin", "GET", "/api/database/dead-letters/ch-%00", undefined, 400, "*"],
    );
    await check(cases);
    // Nothing was replayed by any of it.
    expect((await gw("admin", "GET", `/api/database/dead-letters/${chId}`)).json.replayedAt).toBeNull();
    expect((await rig.p.pool.query("SELECT replayed_at FROM consumer_dead_letters WHERE id = $1", [pgId])).rows[0].replayed_at).toBeNull();
  }, 300_000);

  it("replays of one ClickHouse letter: eight at once through both gateways are one 200 and seven 409 naming id; one of a topic that is not there 409 naming topic and still replayable; a body sent to it a 400", async () => {
    const topic = await topicOfOne();
    const id = await clickHouseLetter({ topic });
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => gw("admin", "POST", `/api/database/dead-letters/${id}/replay`, { via: i % 2 ? "lane" : "plain" })));
    const got = all.map((a) => [a.status, a.json?.error?.field]).sort((a, b) => Number(a[0]) - Number(b[0]));
    expect(got, all.map((a) => a.text).join("\n")).toEqual([[200, undefined], ...Array(7).fill([409, "id"])]);
    // Once on the topic: one message there.
    const offsets = await (async () => {
      const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: 0 }).admin();
      await admin.connect();
      try {
        return await admin.fetchTopicOffsets(topic);
      } finally {
        await admin.disconnect();
      }
    })();
    expect(offsets.map((o) => o.high)).toEqual(["1"]);
    const again = await gw("admin", "POST", `/api/database/dead-letters/${id}/replay`);
    expect([again.status, again.json?.error?.code]).toEqual([409, "ALREADY_REPLAYED"]);
    // A letter of a topic that does not exist: 409 TOPIC_NOT_FOUND naming topic, twice at once, and still replayable.
    const gone = await clickHouseLetter({ topic: `h55-gone-${randomBytes(4).toString("hex")}` });
    const twice = await Promise.all([gw("admin", "POST", `/api/database/dead-letters/${gone}/replay`), gw("admin", "POST", `/api/database/dead-letters/${gone}/replay`)]);
    for (const t of twice) expect.soft([t.status, t.json?.error?.code === "TOPIC_NOT_FOUND" ? "topic" : t.json?.error?.field], t.text).toEqual([409, t.json?.error?.code === "TOPIC_NOT_FOUND" ? t.json?.error?.field : "id"]);
    expect((await gw("admin", "GET", `/api/database/dead-letters/${gone}`)).json.replayedAt).toBeNull();
    // A body or a query sent to the replay.
    for (const [path, body, field] of [[`/api/database/dead-letters/${gone}/replay`, { force: true }, "force"], [`/api/database/dead-letters/${gone}/replay?force=true`, undefined, "force"]] as const) {
      const r = await gw("admin", "POST", path, { body });
      expect.soft([r.status, r.json?.error?.field], r.text).toEqual([400, field]);
    }
    expect(failures).toEqual([]);
  }, 180_000);

  it("letters kept oddly (headers edited, partitions out of range, Kafka's own topics, names it refuses): each replay a 409 naming the part (TOPIC_NOT_FOUND for a partition or topic not there); never a 5xx of the broker's refusal", async () => {
    const topic = await topicOfOne();
    const b64 = Buffer.from("v").toString("base64");
    const stored: Array<[string, { topic?: string; partition?: number; headers?: string }, number[], string | string[] | undefined]> = [
      ["headers not JSON", { topic, headers: "not json" }, [409], "id"],
      ["headers an object", { topic, headers: '{"a":1}' }, [409], "id"],
      ["a header null", { topic, headers: "[null]" }, [409], "id"],
      ["a header value not base64", { topic, headers: '[{"name":"a","value":"!!"}]' }, [409], "id"],
      ["a header without value", { topic, headers: '[{"name":"a","value":null}]' }, [409], "id"],
      ["a header named __proto__", { topic, headers: `[{"name":"__proto__","value":"${b64}"}]` }, [200], undefined],
      ["2,000 headers", { topic, headers: JSON.stringify(Array.from({ length: 2_000 }, (_, i) => ({ name: `h${i}`, value: b64 }))) }, [200], undefined],
      ["a partition the topic lacks", { topic, partition: 7 }, [409], "partition"],
      ["partition 2^31-1", { topic, partition: 2_147_483_647 }, [409], "partition"],
      ["partition -1", { topic, partition: -1 }, [409], ["id", "partition"]],
      ["topic __consumer_offsets", { topic: "__consumer_offsets" }, [409], "topic"],
      ["topic __transaction_state", { topic: "__transaction_state" }, [409], "topic"],
      ["a topic name Kafka refuses", { topic: "bad topic!" }, [409], "topic"],
      ["topic '..'", { topic: ".." }, [409], "topic"],
      ["topic of 250 characters", { topic: "t".repeat(250) }, [409], "topic"],
    ];
    for (const store of ["ch", "pg"] as const) {
      for (const [label, o, statuses, field] of stored) {
        if (store === "pg" && o.headers === "not json") continue; // (PostgreSQL's json column refuses it)
        const id = store === "ch" ? await clickHouseLetter(o) : await postgresLetter(o.topic, o);
        const r = await gw("admin", "POST", `/api/database/dead-letters/${id}/replay`);
        expect.soft(statuses, `${store} ${label}: ${r.status} ${r.text.slice(0, 240)}`).toContain(r.status);
        if (r.status === 409) expect.soft([field ?? "id"].flat(), `${store} ${label}: ${r.text.slice(0, 240)}`).toContain(r.json?.error?.field);
        // Shown to the admin whatever it holds.
        expect.soft((await gw("admin", "GET", `/api/database/dead-letters/${id}`)).status, `${store} ${label} shown`).toBe(200);
      }
    }
    expect(failures).toEqual([]);
  }, 240_000);
});

describe("notification-service's dead letters (/api/notifications/dead-letters)", () => {
  it("another user's letter, ids out of their pattern, the admin's listing as a trader, forged tokens, and eight replays of one letter at once", async () => {
    const mine = await deadWebhookLetter(rig.p.pool, who.alice.id);
    const path = (id: string) => `/api/notifications/dead-letters/${id}/replay`;
    const cases: Case[] = [
      ["bob", "POST", path(mine), undefined, 404, undefined],
      ["bob", "GET", "/api/notifications/dead-letters?all=true", undefined, 403, undefined],
      ["bob", "GET", "/api/notifications/dead-letters?all=1", undefined, 400, "all"],
      ["bob", "GET", "/api/notifications/dead-letters?all=TRUE", undefined, 400, "all"],
      ["none", "POST", path(mine), undefined, 401, undefined],
      ["alice", "POST", path(mine), { force: true }, 400, "force"],
    ];
    for (const seg of ["-1", "0x10", "1e3", "9".repeat(30), "%00", "1%00", "abc", "1.5", "%EF%BC%91", "'%20OR%201=1", `${mine}%20`, "+1", "__proto__"])
      cases.push(["alice", "POST", path(seg), undefined, 400, seg.startsWith("%00") || seg === "1%00" ? "*" : "id"]);
    await check(cases);
    // The other user's replay changed nothing: alice replays it x8 at once: one 200, seven 409 naming id.
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => gw("alice", "POST", path(mine), { via: i % 2 ? "lane" : "plain" })));
    expect(all.map((a) => [a.status, a.json?.error?.field]).sort((a, b) => Number(a[0]) - Number(b[0])), all.map((a) => a.text).join("\n")).toEqual([[200, undefined], ...Array(7).fill([409, "id"])]);
    expect(failures).toEqual([]);
  }, 120_000);
});

describe("payment-service's held charges and refunds, billing's invoices (/api/payments, /api/billing)", () => {
  it("a charge the processor answers with another amount: one Idempotency-Key x8 at once, another body under it, another user's same key; nothing charged twice", async () => {
    fake.chargesDiverge = { amountOff: 7 };
    try {
      const key = `h55-held-${randomBytes(4).toString("hex")}`;
      const body = { amount: 1_000, currency: "usd", paymentMethod: who.alice.pm };
      const before = fake.created;
      const all = await Promise.all(Array.from({ length: 8 }, () => gw("alice", "POST", "/api/payments/intents", { body, headers: { "idempotency-key": key } })));
      const codes = all.map((a) => a.status);
      // Every answer a 4xx or the first's (the processor's mismatch: the first 502 PROCESSOR_MISMATCH is the processor's, not the client's fault).
      expect(codes.filter((s) => s >= 500 && s !== 502), all.map((a) => a.text).join("\n")).toEqual([]);
      expect(codes.filter((s) => s === 502).length).toBeLessThanOrEqual(1);
      for (const a of all.filter((x) => x.status === 409)) expect.soft(a.json.error.field, a.text).toBe("idempotency-key");
      // Retried, another body, another user's same key.
      const retry = await gw("alice", "POST", "/api/payments/intents", { body, headers: { "idempotency-key": key } });
      expect([retry.status, retry.json?.error?.code]).toEqual([409, "CHARGE_HELD_FOR_REVIEW"]);
      const other = await gw("alice", "POST", "/api/payments/intents", { body: { ...body, amount: 2_000 }, headers: { "idempotency-key": key } });
      expect([other.status, other.json?.error?.field]).toEqual([409, "idempotency-key"]);
      expect(fake.created - before).toBe(1);
      fake.chargesDiverge = undefined;
      const bobs = await gw("bob", "POST", "/api/payments/intents", { body: { ...body, paymentMethod: who.bob.pm }, headers: { "idempotency-key": key } });
      expect(bobs.status, bobs.text).toBe(201);
      expect(bobs.json.userId).toBe(who.bob.id);
      // Alice's held payment is hers: bob reads no such payment of hers, alice's list shows it once.
      const mine = (await gw("alice", "GET", "/api/payments/intents")).json.intents.filter((i: { amount: number }) => i.amount === 1_000);
      expect(mine.length).toBeGreaterThanOrEqual(1);
      for (const i of mine) expect.soft((await gw("bob", "GET", `/api/payments/intents/${i.id}`)).status).toBe(404);
    } finally {
      fake.chargesDiverge = undefined;
    }
    expect(failures.filter((f) => !f.includes("[status 502]"))).toEqual([]);
  }, 120_000);

  it("one Idempotency-Key x8 at once with two bodies (four each), through both gateways: one payment made, the same body's answers it, the other body's a 409 naming the key", async () => {
    const key = `h55-two-${randomBytes(4).toString("hex")}`;
    const bodies = [{ amount: 1_100, currency: "usd", paymentMethod: who.alice.pm }, { amount: 1_200, currency: "usd", paymentMethod: who.alice.pm }];
    const before = fake.created;
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => gw("alice", "POST", "/api/payments/intents", { body: bodies[i % 2], headers: { "idempotency-key": key }, via: i % 4 < 2 ? "lane" : "plain" })));
    const codes = all.map((a) => a.status);
    // (A 503 here would be the slow-database class h1 owns this session: noted, not this file's to fix.)
    expect(codes.filter((s) => s >= 500), all.map((a) => a.text).join("\n")).toEqual([]);
    expect(fake.created - before).toBe(1);
    const made = all.filter((a) => a.status === 201 || a.status === 200);
    expect(new Set(made.map((a) => a.json.id)).size).toBe(1);
    const amount = made[0].json.amount as number;
    for (const a of all) {
      if (a.status === 201 || a.status === 200) expect.soft(a.json.amount).toBe(amount);
      else expect.soft([a.status, a.json?.error?.field], a.text).toEqual([409, "idempotency-key"]);
    }
    // Each body that was not the one made is refused with it afterwards too.
    const other = bodies.find((b) => b.amount !== amount)!;
    const late = await gw("alice", "POST", "/api/payments/intents", { body: other, headers: { "idempotency-key": key } });
    expect([late.status, late.json?.error?.field]).toEqual([409, "idempotency-key"]);
    expect(failures).toEqual([]);
  }, 120_000);

  it("refunds: amounts as numbers past a double, -0, 1e-400, strings, hex; one key x8 at once; another body under one key; a trader and another user", async () => {
    const pay = await gw("alice", "POST", "/api/payments/intents", { body: { amount: 5_000, currency: "usd", paymentMethod: who.alice.pm }, headers: { "idempotency-key": `h55-pay-${randomBytes(4).toString("hex")}` } });
    expect(pay.status, pay.text).toBe(201);
    const path = `/api/payments/intents/${pay.json.id}/refunds`;
    const key = () => ({ "idempotency-key": `h55-r-${randomBytes(4).toString("hex")}` });
    const cases: Array<[unknown, number, string | undefined]> = [
      [{ amount: 1e309 }, 400, "amount"], [{ amount: -0 }, 400, "amount"], [{ amount: 0 }, 400, "amount"], [{ amount: -1 }, 400, "amount"], [{ amount: 1.5 }, 400, "amount"],
      [{ amount: 9007199254740993 }, 400, "amount"], [{ amount: 1e21 }, 400, "amount"], [{ amount: "100" }, 400, "amount"], [{ amount: "0x64" }, 400, "amount"], [{ amount: null }, 400, "amount"],
      [{ amount: [1] }, 400, "amount"], [{ amount: { a: 1 } }, 400, "amount"], [{ amount: true }, 400, "amount"], [{ reason: "a\u0000b" }, 400, "reason"], [{ reason: "a\nforged" }, 400, "reason"],
      [{ reason: "x".repeat(501) }, 400, "reason"], [{ amount: 10, extra: 1 }, 400, "extra"], [{ amount: 999_999 }, 409, undefined],
    ];
    for (const [body, status, field] of cases) {
      const r = await gw("admin", "POST", path, { body, headers: key() });
      expect.soft([r.status, r.json?.error?.field], `${JSON.stringify(body)?.slice(0, 60)}: ${r.text.slice(0, 200)}`).toEqual(field === undefined && status === 409 ? [409, r.json?.error?.field] : [status, field]);
    }
    // Raw JSON numbers JSON.stringify cannot write: 1e-400 (read as 0), -0.0, 1E3, a 400-digit integer.
    for (const raw of ['{"reason":"a\\ud800b"}', '{"reason":"\\udc00"}', '{"amount":1e-400}', '{"amount":-0.0}', '{"amount":1E3}', `{"amount":${"9".repeat(400)}}`, '{"amount":0x10}', '{"amount":1_000}', '{"amount":.5}']) {
      const r = await fetch(`${gateways.plain}${path}`, { method: "POST", headers: { authorization: `Bearer ${who.admin.token}`, "content-type": "application/json", ...key() }, body: raw });
      const text = await r.text();
      rig.judged++;
      expect.soft(r.status, `${raw}: ${text}`).toBeLessThan(500);
      if (raw !== '{"amount":1E3}') expect.soft([r.status, JSON.parse(text).error?.field], raw).toEqual([400, raw.includes("reason") ? "reason" : raw.includes("0x") || raw.includes("_") || raw.includes(":.") ? "body" : "amount"]);
    }
    // One key at once x8: one refund.
    const k = key();
    const burst = await Promise.all(Array.from({ length: 8 }, () => gw("admin", "POST", path, { body: { amount: 100 }, headers: k })));
    expect(burst.filter((a) => a.status >= 500), burst.map((a) => a.text).join("\n")).toEqual([]);
    const refunds = (await gw("admin", "GET", `/api/payments/intents/${pay.json.id}`)).json.refunds as Array<{ amount: number }>;
    expect(refunds.filter((r) => r.amount === 100).length).toBe(1);
    // Another body under that key: 409 naming the key, nothing more refunded.
    const other = await gw("admin", "POST", path, { body: { amount: 200 }, headers: k });
    expect([other.status, other.json?.error?.field]).toEqual([409, "idempotency-key"]);
    // A trader, and another user, on the admin's refund route.
    await check([
      ["alice", "POST", path, { amount: 100 }, 403, undefined],
      ["bob", "POST", path, { amount: 100 }, 403, undefined],
      ["admin", "POST", path, { amount: 100 }, 400, "idempotency-key"],
    ]);
    expect(failures).toEqual([]);
  }, 180_000);

  it("billing: plans' numbers and ids, another user's subscription, invoices' limit, the cycle as a trader; chargeHeldAt only on a held invoice", async () => {
    const plan = (over: Record<string, unknown>) => ({ id: `h55-${randomBytes(3).toString("hex")}`, name: "h55", currency: "usd", amount: 1_000, interval: "month", ...over });
    const cases: Case[] = [];
    for (const [over, field] of [
      [{ amount: 1e309 }, "amount"], [{ amount: -0 }, undefined], [{ amount: -1 }, "amount"], [{ amount: 1.5 }, "amount"], [{ amount: 1e21 }, "amount"], [{ amount: "1000" }, "amount"],
      [{ amount: 99_999_999_999 }, "amount"], [{ trialDays: 366 }, "trialDays"], [{ trialDays: -1 }, "trialDays"], [{ interval: "week" }, "interval"], [{ currency: "USD" }, "currency"], [{ currency: "xxx" }, "currency"],
      [{ id: "H55" }, "id"], [{ id: "a'; DROP TABLE x; --" }, "id"], [{ id: "-a" }, "id"], [{ id: "a".repeat(64) }, "id"], [{ id: "constructor" }, undefined], [{ id: "__proto__" }, "id"], [{ id: "tostring" }, undefined],
      [{ name: "a\u0000b" }, "name"], [{ name: "\u202eevil" }, "name"], [{ name: "x".repeat(101) }, "name"], [{ usage: { metric: "api_requests", included: 0, blockSize: 0, blockAmount: 1 } }, "usage.blockSize"],
      [{ usage: { metric: "api_requests", included: -1, blockSize: 1, blockAmount: 1 } }, "usage.included"], [{ usage: { metric: "api_requests", included: 0, blockSize: 1, blockAmount: 1e12 } }, "usage.blockAmount"],
      [{ usage: { metric: "other", included: 0, blockSize: 1, blockAmount: 1 } }, "usage.metric"], [{ role: "admin" }, "role"],
    ] as Array<[Record<string, unknown>, string | undefined]>)
      cases.push(["admin", "POST", "/api/billing/plans", plan(over), field === undefined ? 201 : 400, field]);
    cases.push(["alice", "POST", "/api/billing/plans", plan({}), 403, undefined], ["alice", "POST", "/api/billing/cycle", undefined, 403, undefined], ["none", "POST", "/api/billing/cycle", undefined, 401, undefined]);
    for (const [q, status, field] of [["limit=0", 400, "limit"], ["limit=201", 400, "limit"], ["limit=1e309", 400, "limit"], ["limit=-0", 400, "limit"], ["limit=0x10", 400, "limit"], ["limit=%00", 400, "limit"], ["limit=1&limit=2", 400, "limit"], ["limit=200", 200, undefined], ["before=1", 400, "before"]] as const)
      cases.push(["alice", "GET", `/api/billing/invoices?${q}`, undefined, status, field]);
    await check(cases);
    // A plan of alice's, and bob on her subscription.
    const basic = plan({ trialDays: 0 });
    expect((await gw("admin", "POST", "/api/billing/plans", { body: basic })).status).toBe(201);
    const other = plan({ amount: 2_000, trialDays: 0 });
    expect((await gw("admin", "POST", "/api/billing/plans", { body: other })).status).toBe(201);
    const sub = await gw("alice", "POST", "/api/billing/subscriptions", { body: { planId: basic.id, paymentMethod: who.alice.pm } });
    expect(sub.status, sub.text).toBe(201);
    const s = sub.json.id as string;
    await check([
      ["bob", "POST", `/api/billing/subscriptions/${s}/plan`, { planId: other.id }, 404, undefined],
      ["bob", "POST", `/api/billing/subscriptions/${s}/payment-method`, { paymentMethod: who.bob.pm }, 404, undefined],
      ["bob", "POST", `/api/billing/subscriptions/${s}/cancel`, {}, 404, undefined],
      ["alice", "POST", `/api/billing/subscriptions/${s}/payment-method`, { paymentMethod: who.bob.pm }, 404, "paymentMethod"],
      ["alice", "POST", `/api/billing/subscriptions/${s.toUpperCase()}/cancel`, { atPeriodEnd: "false" }, 400, "atPeriodEnd"],
      ["alice", "POST", `/api/billing/subscriptions/${s}/cancel`, { atPeriodEnd: 0 }, 400, "atPeriodEnd"],
      ["alice", "POST", `/api/billing/subscriptions/${s}/plan`, { planId: "nope-plan" }, 404, "planId"],
    ]);
    // Bob's invoices hold none of alice's; alice's invoice shows chargeHeldAt null (nothing held).
    const bobs = (await gw("bob", "GET", "/api/billing/invoices")).json.invoices as Array<{ subscriptionId: string }>;
    expect(bobs.filter((i) => i.subscriptionId === s)).toEqual([]);
    for (const inv of (await gw("alice", "GET", "/api/billing/invoices")).json.invoices as Array<{ subscriptionId: string; chargeHeldAt: string | null }>)
      if (inv.subscriptionId === s) expect(inv.chargeHeldAt).toBeNull();
    expect(failures).toEqual([]);
  }, 180_000);

  it("an invoice whose charge is held for review: shown with chargeHeldAt to its owner only; card changes x8, cycles x4 and a plan change at once charge nothing again", async () => {
    const plan = { id: `h55-held-${randomBytes(3).toString("hex")}`, name: "h55 held", currency: "usd", amount: 1_500, interval: "month", trialDays: 0 };
    expect((await gw("admin", "POST", "/api/billing/plans", { body: plan })).status).toBe(201);
    const carol = await account("carol");
    who.carol = carol;
    const second = (await gw("carol", "POST", "/api/payments/payment-methods", { body: { paymentMethod: "pm_card_mastercard" } })).json.paymentMethod as string;
    const before = fake.created;
    fake.chargesDiverge = { amountOff: 3 };
    let sub: JudgedAnswer;
    try {
      sub = await gw("carol", "POST", "/api/billing/subscriptions", { body: { planId: plan.id, paymentMethod: carol.pm } });
    } finally {
      fake.chargesDiverge = undefined;
    }
    expect(sub.status, sub.text).toBe(201);
    const invoices = async (as: string) => (await gw(as, "GET", "/api/billing/invoices")).json.invoices as Array<{ id: string; subscriptionId: string; chargeHeldAt: string | null; status: string }>;
    const held = (await invoices("carol")).find((i) => i.subscriptionId === sub.json.id);
    expect(held?.chargeHeldAt, JSON.stringify(held)).toEqual(expect.any(String));
    expect(fake.created - before).toBe(1);
    // Nobody else sees it; the operators' gauge route is not a client's.
    for (const as of ["alice", "bob"]) expect((await invoices(as)).some((i) => i.id === held!.id)).toBe(false);
    const all = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => gw("carol", "POST", `/api/billing/subscriptions/${sub.json.id}/payment-method`, { body: { paymentMethod: i % 2 ? second : carol.pm } })),
      ...Array.from({ length: 4 }, () => gw("admin", "POST", "/api/billing/cycle")),
      gw("carol", "POST", `/api/billing/subscriptions/${sub.json.id}/plan`, { body: { planId: plan.id } }),
    ]);
    expect(all.filter((a) => a.status >= 500), all.map((a) => a.text).join("\n")).toEqual([]);
    expect(all.filter((a) => a.status >= 400).map((a) => [a.status, a.json?.error?.field ?? null])).toEqual(all.filter((a) => a.status >= 400).map((a) => [a.status, a.json?.error?.field ?? null]).filter((x) => x[0] === 409 || x[0] === 400));
    expect(fake.created - before, "charges made at the processor").toBe(1);
    expect((await invoices("carol")).find((i) => i.id === held!.id)?.chargeHeldAt).toBe(held!.chargeHeldAt);
    expect(failures).toEqual([]);
  }, 180_000);

  it("a booked refund the processor paid out at another amount: settles x8 at once on both gateways are one 200 and seven 409; revenue's refunded moves once; records no ledger can book are 409", async () => {
    const revenueRefunded = async () => {
      const r = await gw("admin", "GET", "/api/revenue/?periodDays=1");
      return Number(r.json.currencies.find((c: { currency: string }) => c.currency === "usd")?.refunded ?? 0);
    };
    /** A payment of `paid` fully refunded and booked, then listed by the processor at `processorAmount` (a re-check's mismatch issue). */
    const bookedThenMismatched = async (paid: number, processorAmount: number | string, currency?: string) => {
      const pay = await gw("alice", "POST", "/api/payments/intents", { body: { amount: paid, currency: "usd", paymentMethod: who.alice.pm }, headers: { "idempotency-key": `h55-adj-${randomBytes(4).toString("hex")}` } });
      expect(pay.status, pay.text).toBe(201);
      const refunded = await gw("admin", "POST", `/api/payments/intents/${pay.json.id}/refunds`, { body: { amount: paid }, headers: { "idempotency-key": `h55-adj-r-${randomBytes(4).toString("hex")}` } });
      expect(refunded.json.refund?.status, refunded.text).toBe("succeeded");
      const atProcessor = fake.refundOf(refunded.json.refund.id) as unknown as Record<string, unknown>;
      atProcessor.amount = processorAmount;
      if (currency) atProcessor.currency = currency;
      await rig.p.pool.query("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refunded.json.refund.id]);
      const rec = await gw("admin", "POST", "/api/payments/reconcile");
      expect(rec.status, rec.text).toBe(200);
      const issues = (await gw("admin", "GET", "/api/payments/refund-issues?limit=500")).json.issues as Array<{ id: string; intentId: string }>;
      return { intentId: pay.json.id as string, issue: issues.find((i) => i.intentId === pay.json.id) };
    };
    const before = await revenueRefunded();
    const { intentId, issue } = await bookedThenMismatched(2_000, 1_500);
    expect(issue).toBeDefined();
    await expect.poll(revenueRefunded, { timeout: 30_000 }).toBe(before + 2_000);
    const note = { note: "the processor paid out 15.00 of the 20.00" };
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => gw("admin", "POST", `/api/payments/refund-issues/${issue!.id}/settle`, { body: note, via: i % 2 ? "lane" : "plain" })));
    expect(all.map((a) => [a.status, a.json?.error?.field]).sort((a, b) => Number(a[0]) - Number(b[0])), all.map((a) => a.text).join("\n")).toEqual([[200, undefined], ...Array(7).fill([409, "id"])]);
    expect((await gw("admin", "GET", `/api/payments/intents/${intentId}`)).json.refunded).toBe(1_500);
    // Revenue follows by the difference, once (the one payment.refund_adjusted).
    await expect.poll(revenueRefunded, { timeout: 30_000 }).toBe(before + 1_500);
    let oddSettled = 0;
    // Records a compromised or odd processor could show: more than the payment, none, negative, past a double, text, another currency.
    for (const [amount, currency, code] of [
      [2_500, undefined, "REFUND_EXCEEDS_PAYMENT"], [0, undefined, "PROCESSOR_RECORD_UNBOOKABLE"], [-5, undefined, "PROCESSOR_RECORD_UNBOOKABLE"],
      [1e21, undefined, "PROCESSOR_RECORD_UNBOOKABLE"], [1_000, "eur", "REFUND_BOOKED"], [1_000, "zz%", "PROCESSOR_RECORD_UNBOOKABLE"],
    ] as const) {
      const odd = await bookedThenMismatched(2_000, amount, currency);
      if (!odd.issue) continue; // (not a mismatch the re-check records: nothing to settle)
      oddSettled++;
      const r = await gw("admin", "POST", `/api/payments/refund-issues/${odd.issue.id}/settle`, { body: note });
      expect.soft([r.status, r.json?.error?.code, r.json?.error?.field], `${amount} ${currency}: ${r.text}`).toEqual([409, code, "id"]);
      expect.soft((await gw("admin", "GET", `/api/payments/intents/${odd.intentId}`)).json.refunded, `${amount} ${currency}`).toBe(2_000);
    }
    expect(oddSettled).toBeGreaterThanOrEqual(4);
    expect(failures).toEqual([]);
  }, 240_000);

  it("revenue-analytics' instants and periods at and past their range; a trader; a read key", async () => {
    const cases: Case[] = [];
    const r = (q: string, status: number, field?: string): Case => ["admin", "GET", `/api/revenue/?${q}`, undefined, status, field];
    // (The platform's instants: 1970-01-01 to 2106-02-07, kit instants.)
    for (const asOf of ["1970-01-01T00:00:00Z", "2106-02-07T06:28:15Z", "2024-02-29T00:00:00Z", "2024-01-01T00:00:00+14:00", "2024-01-01T00:00:00.123456789Z", "1970-01-01T00:00:00-01:00"])
      for (const days of ["1", "3660"]) cases.push(r(`asOf=${encodeURIComponent(asOf)}&periodDays=${days}`, 200));
    for (const asOf of ["0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "2106-02-07T06:28:16Z", "1970-01-01T00:00:00+01:00"]) cases.push(r(`asOf=${encodeURIComponent(asOf)}`, 400, "asOf"));
    for (const [q, field] of [
      ["asOf=2023-02-29T00:00:00Z", "asOf"], ["asOf=2024-13-01T00:00:00Z", "asOf"], ["asOf=%2B275760-09-13T00:00:00Z", "asOf"], ["asOf=-000001-01-01T00:00:00Z", "asOf"], ["asOf=now", "asOf"], ["asOf=1700000000000", "asOf"],
      ["asOf=%00", "asOf"], ["asOf=2024-01-01T00:00:00Z%00", "asOf"], ["asOf=2024-01-01", "asOf"], ["periodDays=0", "periodDays"], ["periodDays=3661", "periodDays"], ["periodDays=1e309", "periodDays"],
      ["periodDays=-0", "periodDays"], ["periodDays=0x10", "periodDays"], ["periodDays=1.5", "periodDays"], ["periodDays=1&periodDays=2", "periodDays"], ["currency=usd", "currency"],
    ] as const)
      cases.push(r(q, 400, field));
    cases.push(["alice", "GET", "/api/revenue/", undefined, 403, undefined], ["none", "GET", "/api/revenue/", undefined, 401, undefined]);
    await check(cases);
  }, 120_000);
});

describe("revoked, disabled and deleted users on the new routes, both gateways", () => {
  it("a token logged out everywhere, a disabled user's and a deleted user's are 401 on billing, payments and dead letters; the deleted-customers pass x3 at once deletes the processor customer once", async () => {
    const routes: Array<[string, string, unknown]> = [
      ["GET", "/api/billing/invoices", undefined], ["GET", "/api/billing/subscriptions", undefined], ["GET", "/api/payments/intents", undefined],
      ["POST", "/api/payments/payment-methods", { paymentMethod: "pm_card_visa" }], ["GET", "/api/notifications/dead-letters", undefined], ["POST", `/api/notifications/dead-letters/${randomUUID()}/replay`, undefined],
    ];
    const refusedEverywhere = async (token: string, label: string) => {
      for (const via of ["plain", "lane"] as const)
        for (const [method, path, body] of routes)
          await expect.poll(async () => (await gw(token, method, path, { body, via })).status, { timeout: 15_000, message: `${label} ${via} ${method} ${path}` }).toBe(401);
    };
    const erin = await account("erin");
    expect((await gw(erin.token, "POST", "/api/users/logout", { body: { all: true } })).status).toBe(204);
    await refusedEverywhere(erin.token, "logged out");
    const frank = await account("frank");
    expect((await gw("admin", "POST", `/api/users/admin/users/${frank.id}/disable`)).status).toBe(200);
    await refusedEverywhere(frank.token, "disabled");
    const gina = await account("gina");
    const customersBefore = fake.customers.size;
    expect((await gw("admin", "DELETE", `/api/users/admin/users/${gina.id}`)).status).toBe(204);
    await refusedEverywhere(gina.token, "deleted");
    const passes = await Promise.all(Array.from({ length: 3 }, (_, i) => gw("admin", "POST", "/api/payments/reconcile", { via: i % 2 ? "lane" : "plain" })));
    expect(passes.filter((x) => x.status >= 500), passes.map((x) => x.text).join("\n")).toEqual([]);
    const deleted = passes.filter((x) => x.status === 200).reduce((n, x) => n + Number(x.json.customersDeleted), 0);
    // (A pass may find another pass holding the work: each customer deleted by one of them, once.)
    const again = await gw("admin", "POST", "/api/payments/reconcile");
    expect(deleted + Number(again.json.customersDeleted), `customers ${customersBefore} -> ${fake.customers.size}`).toBe(1);
    expect(failures).toEqual([]);
  }, 180_000);
});

describe("the gateway's /api/health and /api/docs, and the forwarding headers it drops, with the fast lane and without", () => {
  const SPOOFED: Record<string, string> = {
    forwarded: "for=1.2.3.4;host=evil.example;proto=http",
    "x-forwarded-for": "1.2.3.4",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "gopher",
    "x-forwarded-port": "1",
    "x-forwarded-prefix": "/evil",
    "x-real-ip": "1.2.3.4",
    "x-user-id": randomUUID(),
    "x-user-role": "admin",
    "x-auth-method": "api-key",
  };
  it("health and docs with hostile queries, methods, tokens and spoofed headers: never a 5xx, no internal name; docs name no service", async () => {
    const cases: Case[] = [];
    for (const path of ["/api/health", "/api/docs", "/api/docs/openapi.json"]) {
      for (const q of ["", "?x=1", "?%00", "?a=%zz", `?${"q".repeat(5_000)}`, "?__proto__[x]=1", "?service=database-service", "?constructor=1"]) cases.push(["none", "GET", `${path}${q}`, undefined, -1, undefined]);
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) cases.push(["none", method, path, undefined, -1, undefined]);
      for (const token of ["x.y.z", "alice", "admin"]) cases.push([token, "GET", path, undefined, -1, undefined]);
    }
    for (const tail of ["/", "//", "/..", "/%2e%2e/api/health", "/openapi.json/", "/openapi.json%00", "/../health", "/index.html", "/swagger-ui.css", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd"]) cases.push(["none", "GET", `/api/docs${tail}`, undefined, -1, undefined]);
    let health503 = 0;
    for (const via of ["plain", "lane"] as const) {
      for (const [as, method, path, body] of cases) {
        for (const headers of [{}, SPOOFED]) {
          const r = await gw(as, method, path, { body, headers, via });
          const label = `${via} ${as} ${method} ${path.slice(0, 80)} ${Object.keys(headers).length ? "spoofed" : ""}: ${r.text.slice(0, 200)}`;
          // /api/health is 503 with its report while a routed service is down (here: the ones not started), by design.
          if (r.status === 503 && r.json?.status === "degraded") {
            health503++;
            continue;
          }
          expect.soft(r.status, label).toBeLessThan(500);
          if (r.status >= 400) expect.soft(r.json?.error?.code, label).toBeDefined();
        }
      }
    }
    // The document names no catalog service and no datastore, whoever asks.
    for (const via of ["plain", "lane"] as const) {
      const doc = await gw("none", "GET", "/api/docs/openapi.json", { via, headers: SPOOFED });
      expect(doc.status).toBe(200);
      for (const name of SERVICES) expect.soft(doc.text.includes(`"${name}"`), `${via} docs name ${name}`).toBe(false);
      const health = await gw("none", "GET", "/api/health", { via, headers: SPOOFED });
      for (const name of SERVICES.filter((n) => n !== "api-gateway")) expect.soft(health.text.includes(name), `${via} health names ${name}`).toBe(false);
      expect(health.text.includes("evil.example")).toBe(false);
    }
    expect(health503).toBeGreaterThan(0);
    expect(failures.filter((f) => !/^GET \/api\/(?:docs\/\.\.\/)?health.* -> 503 \[status 503, error body not in the platform's shape\] \{"status":"degraded"/.test(f))).toEqual([]);
  }, 600_000);

  it("spoofed identity and forwarding headers reach no service: a trader stays a trader on an admin route, the upstream's URLs are its own, on both gateways", async () => {
    for (const via of ["plain", "lane"] as const) {
      await check([
        ["alice", "GET", "/api/database/dead-letters", undefined, 403, undefined],
        ["alice", "GET", "/api/revenue/", undefined, 403, undefined],
        ["alice", "GET", "/api/payments/ledger", undefined, 403, undefined],
        ["alice", "GET", "/api/payments/refund-issues", undefined, 403, undefined],
        ["none", "GET", "/api/billing/invoices", undefined, 401, undefined],
        ["none", "GET", "/api/database/dead-letters", undefined, 401, undefined],
      ], { via, headers: SPOOFED });
      // The user the gateway names is the token's, whatever X-User-Id said.
      const me = await gw("alice", "GET", "/api/users/me", { via, headers: SPOOFED });
      expect(me.json.id ?? me.json.user?.id).toBe(who.alice.id);
      // Header injection attempts: CR/LF can't be sent by fetch; values holding other headers' text are one value.
      const r = await gw("alice", "GET", "/api/billing/invoices", { via, headers: { "x-forwarded-for": "1.2.3.4, x-user-role: admin", forwarded: 'for="[::1]:80";by=unknown, for=_hidden' } });
      expect(r.status).toBe(200);
    }
  }, 120_000);

  it("a spoofed X-Forwarded-For is no way around the rate limit of an address, nor of a user, on either gateway", async () => {
    // The platform's gateways count a million a window: one of this file's with a limit of 10, per lane setting.
    for (const lane of ["true", "false"]) {
      const g = await createService(apiGateway, { env: { ...rig.p.env, GATEWAY_FAST_LANE: lane, RATE_LIMIT_MAX_REQUESTS: "10" }, defaultMetrics: false });
      try {
        const url = await g.listen({ port: 0, host: "127.0.0.1" });
        const ask = (i: number) => fetch(`${url}/api/billing/invoices`, { headers: { authorization: `Bearer ${who.bob.token}`, "x-forwarded-for": `10.0.${i >> 8}.${i & 255}`, "x-real-ip": `10.1.0.${i & 255}`, forwarded: `for=10.2.0.${i & 255}` } });
        const codes: number[] = [];
        for (let i = 0; i < 25; i++) codes.push((await ask(i)).status);
        expect(codes.filter((c) => c !== 200 && c !== 429), `lane ${lane}`).toEqual([]);
        expect(codes.filter((c) => c === 200).length, `lane ${lane}`).toBeLessThanOrEqual(10);
      } finally {
        await g.close();
      }
    }
  }, 120_000);
});

describe("a malformed request on a kept-alive connection, every service (kit client-errors.ts)", () => {
  const MALFORMED: Array<[string, string, string]> = [
    ["CL with TE", "GET /health HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"],
    ["NUL in a header", "GET /health HTTP/1.1\r\nHost: s\r\nX-Bad: a\u0000b\r\n\r\n", "headers"],
    ["lower-case method", "get /health HTTP/1.1\r\nHost: s\r\n\r\n", "method"],
    ["TE twice", "GET /health HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"],
    // (No route takes a POST to /health: its 404 goes before the body is read, and the bad chunk then closes the connection with no second answer.)
    ["bad chunk size", "POST /health HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""],
    ["obs-fold", "GET /health HTTP/1.1\r\nHost: s\r\nX-A: a\r\n b\r\n\r\n", "headers"],
    ["bad version", "GET /health HTTP/9.9\r\nHost: s\r\n\r\n", "version"],
    ["CONNECT", "CONNECT s:443 HTTP/1.1\r\nHost: s:443\r\n\r\n", "method"],
  ];
  const GOOD = "GET /health HTTP/1.1\r\nHost: s\r\n\r\n";

  it("after an answered request, alone, and pipelined behind one: its 400 naming the part (or the first's answer), and the service lives on", async () => {
    const targets: Array<[string, string]> = [...[...rig.p.urls].filter(([n]) => n !== "api-gateway"), ["api-gateway (plain)", gateways.plain], ["api-gateway (lane)", gateways.lane]];
    let n = 0;
    for (const [name, url] of targets) {
      for (const [label, bytes, field] of MALFORMED) {
        const mine: string[] = [];
        // After an answered one on the connection: the first's 200, then the malformed one's answer.
        const after = await rawJudged(`${name} ${label} after a request`, url, [[GOOD, 300], Buffer.from(bytes, "latin1")], { failures: mine, internalPorts: rig.internalPorts, waitMs: 5_000 });
        const fieldOf = (body: string) => { try { return JSON.parse(body).error?.field; } catch { return undefined; } };
        const want = label === "CONNECT" ? 405 : field ? 400 : 404;
        expect.soft([after.statuses, fieldOf(after.body)], `${name} ${label} after: ${after.all.slice(0, 200)}`).toEqual([[200, want], field || undefined]);
        // Pipelined in one write behind a request: the first answered, the connection closed after it (or the second refused).
        const piped = await rawJudged(`${name} ${label} pipelined`, url, [Buffer.from(GOOD + bytes, "latin1")], { failures: mine, internalPorts: rig.internalPorts, waitMs: 5_000 });
        expect.soft(piped.statuses[0], `${name} ${label} pipelined: ${piped.all.slice(0, 200)}`).toBe(200);
        expect.soft(piped.statuses.slice(1).every((s) => s === want), `${name} ${label} pipelined: ${piped.statuses}`).toBe(true);
        failures.push(...mine);
        n += 2;
      }
      // Alive: a request on a new connection is answered.
      const alive = await fetch(`${url}/health`);
      expect.soft(alive.status, `${name} alive`).toBe(200);
    }
    rig.judged += n;
    expect(n).toBeGreaterThan(100);
    expect(failures).toEqual([]);
  }, 300_000);
});
