/**
 * What database-service's reads of ClickHouse's dead letters cost (session 54), on ClickHouse 18.16
 * with PostgreSQL's replay ledger. One letter by its id (`ch-` and 32 hex digits of a hash of its
 * natural key) read every row of consumer_dead_letters to compute their ids; it is found by
 * ClickHouse migration 0032's table keyed by id, then read by its key: query_log's SelectedMarks
 * (tests/helpers/query-log.ts) stay a few granules with 80,000 other letters. The listing filtered by
 * `replayed` sent every replayed id of the ledger to ClickHouse in one query, which past about
 * 6,500 ids outgrew the server's max_query_size and failed: it filters pages of letters by the
 * ledger now, each request reading a bounded number, and its pages still give every letter once.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { clickhouseDateTime } from "../../services/src/kit";
import { CH_FILTER_PAGE, CH_FILTER_READ_MAX, clickHouseLetter, clickHouseLetterId } from "../../services/src/services/database-service/clickhouse-dead-letters";
import { ADMIN, useDatabaseServiceRig } from "../helpers/database-service-rig";
import { withSelectedMarks } from "../helpers/query-log";

const rig = useDatabaseServiceRig();
const run = randomBytes(3).toString("hex");

/** Letters of `group` at offsets from `first`, as a consumer without PostgreSQL writes them (trading/infra/deadLetters.ts). */
async function insertLetters(group: string, first: number, n: number, at: Date): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 20_000) {
    const rows = Array.from({ length: Math.min(20_000, n - i) }, (_, k) => {
      const offset = first + i + k;
      ids.push(clickHouseLetterId(group, `reads-${run}`, 0, String(offset)));
      return {
        consumer_group: group,
        topic: `reads-${run}`,
        msg_partition: 0,
        msg_offset: offset,
        msg_key_base64: "aw==",
        msg_value_base64: Buffer.from(`v${offset}`).toString("base64"),
        msg_key_null: 0,
        msg_value_null: 0,
        msg_headers: "[]",
        reason: "PoisonMessageError: r",
        created_at: clickhouseDateTime(at),
      };
    });
    await rig.ch.insert("consumer_dead_letters", rows);
  }
  return ids;
}

/** Each table one part, as background merges leave it, so a read by the key is a granule of one part. */
async function mergeLetterTables(): Promise<void> {
  for (const table of ["consumer_dead_letters", "consumer_dead_letter_ids"]) {
    for (let i = 0; ; i++) {
      await rig.ch.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
      const [p] = await rig.ch.query<{ n: string }>("SELECT toString(count()) AS n FROM system.parts WHERE active AND database = currentDatabase() AND table = {t:String}", { t: table });
      if (p.n === "1") break;
      if (i >= 50) throw new Error(`${table} still has ${p.n} parts`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe("one ClickHouse letter by its id", () => {
  it("selects a few granules, not the table: the same with 80,000 other letters as with none", async () => {
    const group = `reads-one-${run}`;
    const [id] = await insertLetters(group, 7, 1, new Date());
    await mergeLetterTables();
    const alone = await withSelectedMarks(rig.ch, (logged) => clickHouseLetter(logged, rig.pool, id));
    expect(alone.result).toMatchObject({ id, consumerGroup: group, offset: "7", value: Buffer.from("v7") });

    await insertLetters(`reads-noise-${run}`, 0, 80_000, new Date());
    await mergeLetterTables();
    const [{ marks: tableMarks }] = await rig.ch.query<{ marks: string }>(
      "SELECT toString(sum(marks)) AS marks FROM system.parts WHERE active AND database = currentDatabase() AND table = 'consumer_dead_letters'",
    );
    expect(Number(tableMarks)).toBeGreaterThanOrEqual(9);
    const among = await withSelectedMarks(rig.ch, (logged) => clickHouseLetter(logged, rig.pool, id));
    expect(among.result).toEqual(alone.result);
    // A granule of each table (two when the key falls at a granule's edge); before: every granule of the table.
    expect(among.marks, `${among.marks} of ${tableMarks}`).toBeLessThanOrEqual(4);
    expect(await clickHouseLetter(rig.ch, rig.pool, `ch-${"0".repeat(32)}`)).toBeUndefined();
    // Through the route.
    const r = await rig.db.app.inject({ method: "GET", url: `/dead-letters/${id}`, headers: ADMIN });
    expect([r.statusCode, r.json().value]).toEqual([200, Buffer.from("v7").toString("base64")]);
  }, 300_000);
});

describe("the listing filtered by replayed", () => {
  it("with more replayed letters than a page (and than a request reads): each letter once, in order, of the asked state", async () => {
    const group = `reads-replayed-${run}`;
    // More than a request reads (and than one query to ClickHouse could name before session 54).
    const replayedCount = 12_000;
    expect(replayedCount).toBeGreaterThan(CH_FILTER_READ_MAX + CH_FILTER_PAGE);
    const now = Date.now();
    // The replayed ones newest: a listing of the others reads past all of them first.
    const replayed = await insertLetters(group, 0, replayedCount, new Date(now));
    const others = await insertLetters(group, replayedCount, 30, new Date(now - 3_600_000));
    await rig.pool.query(
      `INSERT INTO ch_dead_letter_replays (letter_id, consumer_group, topic, msg_partition, msg_offset, replayed_at, replayed_offset)
       SELECT id, $2, $3, 0, n - 1, now(), n - 1 FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
      [replayed, group, `reads-${run}`],
    );
    // Claimed, not replayed: listed with the others.
    await rig.pool.query(
      "INSERT INTO ch_dead_letter_replays (letter_id, consumer_group, topic, msg_partition, msg_offset, replay_claim, replay_claimed_at) VALUES ($1, $2, $3, 0, $4, gen_random_uuid(), now())",
      [others[0], group, `reads-${run}`, replayedCount],
    );

    const pages = async (replayedToo: boolean, limit: number) => {
      const seen: Array<{ id: string; createdAt: string; replayedAt: string | null }> = [];
      let before: string | null = null;
      let requests = 0;
      do {
        const url: string = `/dead-letters?store=ch&consumerGroup=${group}&replayed=${replayedToo}&limit=${limit}${before ? `&before=${before}` : ""}`;
        const r = await rig.db.app.inject({ method: "GET", url, headers: ADMIN });
        expect(r.statusCode, r.body.slice(0, 500)).toBe(200);
        const body: { deadLetters: typeof seen; nextBefore: string | null } = r.json();
        expect(body.deadLetters.length).toBeLessThanOrEqual(limit);
        seen.push(...body.deadLetters);
        before = body.nextBefore;
        requests++;
      } while (before !== null && requests < 500);
      return { seen, requests };
    };

    const notReplayed = await pages(false, 200);
    expect(notReplayed.seen.map((l) => l.id).sort()).toEqual([...others].sort());
    expect(notReplayed.seen.every((l) => l.replayedAt === null)).toBe(true);
    // The first request read its bound of replayed letters and found none: a short page with a cursor.
    expect(notReplayed.requests).toBeGreaterThanOrEqual(2);

    const yes = await pages(true, 200);
    const ids = yes.seen.map((l) => l.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual([...replayed].sort());
    expect(yes.seen.every((l) => l.replayedAt !== null)).toBe(true);

    // Unfiltered: every letter of the group once, newest first.
    const all = await rig.db.app.inject({ method: "GET", url: `/dead-letters?store=ch&consumerGroup=${group}&limit=200`, headers: ADMIN });
    expect(all.json().deadLetters).toHaveLength(200);
    expect(all.json().nextBefore).not.toBeNull();
  }, 600_000);
});
