/**
 * The outbox relay's wake-ups against a real PostgreSQL (a private outbox table shaped like
 * om_outbox): a commit announced by notify() is relayed at once, with one drain and no empty one
 * after it; a commit announced while a drain is publishing is relayed right after it, without
 * waiting for the interval; a commit nobody announces still goes out at the interval; a full batch
 * is followed by another drain at once; an announced drain scans from the announced id (past the
 * dead index entries of sent rows), and rows nobody announced below it go out with a scan from the
 * start (a relay's first drain, or the interval's).
 * Direct publish: an announced commit goes out without any drain taking it, and is marked sent; a
 * drain never takes a row this process is still publishing, even with no grace; rows nobody
 * announced go out through the drain once older than the grace; a failed direct publish hands
 * everything to the drain, in id order, each row sent once, and direct publish resumes after.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { enqueue, OutboxRelay, type Enqueued, type Sender } from "../../services/src/trading/infra/outbox";
import { outboxPruner } from "../../services/src/trading/infra/outboxRetention";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres");
const TABLE = `test_outbox_${randomBytes(4).toString("hex")}`;
/** Bound of a wait, only a guard against a hang on a loaded machine. */
const WAIT_MS = 120_000;
let pool: InstanceType<typeof pg.Pool>;
const quiet = { warn() {} } as unknown as ConstructorParameters<typeof OutboxRelay>[3];

/** A relay whose drains are counted, and a sender that records what it published. */
class CountingRelay extends OutboxRelay {
  drains: number[] = [];
  /** Where each drain started (0n: from the start). */
  froms: bigint[] = [];
  override async drainOnce(from?: bigint): Promise<number> {
    const n = await super.drainOnce(from);
    this.froms.push(from ?? 0n);
    this.drains.push(n);
    return n;
  }
}
function recordingSender(): Sender & { sent: string[]; hold?: Promise<void>; held?: () => void } {
  const s: Sender & { sent: string[]; hold?: Promise<void>; held?: () => void } = {
    sent: [],
    async send(_topic, messages) {
      s.held?.();
      await s.hold;
      s.sent.push(...messages.map((m) => m.key));
    },
  };
  return s;
}
/** Commits the events of `keys`; answers what was enqueued. */
async function commitRows(keys: string[]): Promise<Enqueued | undefined> {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const enqueued = await enqueue(c, TABLE, keys.map((key) => ({ eventId: `${TABLE}:${key}`, topic: "t", key, payload: { key } })));
    await c.query("COMMIT");
    return enqueued;
  } finally {
    c.release();
  }
}
/** Commits the events of `keys`; answers the smallest id enqueued. */
const commit = async (keys: string[]): Promise<string | undefined> => (await commitRows(keys))?.firstId;
const sentCount = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE sent_at IS NOT NULL`)).rows[0].n as number;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 4 });
  await runPostgresMigrations(pool);
  await pool.query(`CREATE TABLE ${TABLE} (LIKE om_outbox INCLUDING ALL)`);
}, 300_000);

afterAll(async () => {
  await pool?.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  await pool?.end();
});

describe("outbox relay wake-ups", () => {
  it("relays an announced commit with one drain, none empty after it, and never waits for the interval", async () => {
    const sender = recordingSender();
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000 });
    relay.start();
    try {
      await waitUntil("the first (empty) drain", async () => relay.drains.length === 1, WAIT_MS, 10);
      await commit(["a"]);
      relay.notify();
      await waitUntil("a relayed", async () => sender.sent.includes("a"), WAIT_MS, 10);
      await waitUntil("the drain counted", async () => relay.drains.length >= 2, WAIT_MS, 10);

      // A commit announced while a drain is publishing: relayed right after it, no interval wait.
      let release!: () => void;
      sender.hold = new Promise<void>((r) => (release = r));
      const publishing = new Promise<void>((r) => (sender.held = r));
      await commit(["b"]);
      relay.notify();
      await publishing;
      sender.held = undefined;
      // One drain took a; no drain ran after it until the next announcement, b's, whose drain is
      // publishing now: drains run one after another, so one in between would be counted here.
      expect(relay.drains).toEqual([0, 1]);
      await commit(["c"]);
      relay.notify();
      release();
      sender.hold = undefined;
      await waitUntil("b and c relayed", async () => sender.sent.includes("b") && sender.sent.includes("c"), WAIT_MS, 10);
      expect(sender.sent).toEqual(["a", "b", "c"]);
      await waitUntil("a, b and c marked sent", async () => (await sentCount()) === 3, WAIT_MS, 10);
    } finally {
      await relay.stop();
    }
  }, 300_000);

  it("relays a commit nobody announced at the interval, and drains a full batch again at once", async () => {
    const sender = recordingSender();
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 200, batch: 2 });
    await commit(["d", "e", "f", "g", "h"]);
    relay.start();
    try {
      await waitUntil("d..h relayed", async () => ["d", "e", "f", "g", "h"].every((k) => sender.sent.includes(k)) && relay.drains.length >= 3, WAIT_MS, 10);
      // Full batches (2, 2) are followed at once by another drain; the short one (1) ends the run.
      expect(relay.drains.slice(0, 3)).toEqual([2, 2, 1]);
      await commit(["i"]); // no notify(): the interval's drain takes it
      await waitUntil("i relayed at the interval", async () => sender.sent.includes("i"), WAIT_MS, 20);
      await waitUntil("all nine marked sent", async () => (await sentCount()) === 9, WAIT_MS, 10);
    } finally {
      await relay.stop();
    }
  }, 300_000);

  it("drains an announced commit from its first id; a row nobody announced below it goes out with a scan from the start", async () => {
    const sender = recordingSender();
    // The interval is an hour: after its first drain (from the start), this relay scans only from what is announced.
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000 });
    relay.start();
    try {
      await waitUntil("the first drain", async () => relay.drains.length === 1, WAIT_MS, 10);
      expect(relay.froms).toEqual([0n]);
      const unannounced = await commit(["j"]);
      const first = await commit(["k", "l"]);
      expect(first).toMatch(/^\d+$/);
      expect(BigInt(first!)).toBeGreaterThan(BigInt(unannounced!));
      relay.notify(first);
      await waitUntil("k and l relayed", async () => sender.sent.includes("k") && sender.sent.includes("l"), WAIT_MS, 10);
      await waitUntil("the drain counted", async () => relay.drains.length >= 2, WAIT_MS, 10);
      expect(relay.froms[1]).toBe(BigInt(first!));
      expect(relay.drains[1]).toBe(2);
      expect(sender.sent).toEqual(["k", "l"]);
    } finally {
      await relay.stop();
    }
    // A relay starting (a restart, another replica) scans from the start first: j goes out.
    const next = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000 });
    next.start();
    try {
      await waitUntil("j relayed", async () => sender.sent.includes("j"), WAIT_MS, 10);
      // Counted once its drain returns (after the publish j was seen in, and its COMMIT).
      await waitUntil("the drain counted", async () => next.froms.length >= 1, WAIT_MS, 10);
      expect(next.froms[0]).toBe(0n);
    } finally {
      await next.stop();
    }
  }, 300_000);

  it("scans from the start when told of a commit without its id", async () => {
    const sender = recordingSender();
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000 });
    relay.start();
    try {
      await waitUntil("the first drain", async () => relay.drains.length === 1, WAIT_MS, 10);
      await commit(["m"]);
      relay.notify();
      await waitUntil("m relayed", async () => sender.sent.includes("m"), WAIT_MS, 10);
      await waitUntil("the drain counted", async () => relay.drains.length >= 2, WAIT_MS, 10);
      expect(relay.froms.slice(0, 2)).toEqual([0n, 0n]);
    } finally {
      await relay.stop();
    }
  }, 300_000);
});

describe("outbox relay, direct publish", () => {
  const sentKeys = async (keys: string[]) => (await pool.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE sent_at IS NOT NULL AND msg_key = ANY($1)`, [keys])).rows[0].n as number;

  it("publishes an announced commit itself: no drain takes it, it is marked sent, the message is the one the drain would send", async () => {
    const sender = { sent: [] as { key: string; value: string; headers?: Record<string, string> }[], async send(_t: string, m: { key: string; value: string; headers?: Record<string, string> }[]) { this.sent.push(...m); } };
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 50, direct: true, graceMs: 60_000 });
    relay.start();
    try {
      await waitUntil("the first drain", async () => relay.drains.length >= 1, WAIT_MS, 10);
      const enqueued = await commitRows(["da", "db"]);
      expect(enqueued?.messages.map((m) => m.key)).toEqual(["da", "db"]);
      relay.notify(enqueued);
      await waitUntil("da and db marked sent", async () => (await sentKeys(["da", "db"])) === 2, WAIT_MS, 10);
      expect(sender.sent.map((m) => m.key)).toEqual(["da", "db"]);
      expect(JSON.parse(sender.sent[0].value)).toEqual({ key: "da", eventId: `${TABLE}:da` });
      expect(sender.sent[0].headers).toEqual({ "event-id": `${TABLE}:da` });
      expect(relay.publishedDirect).toBe(2);
      // The drains ran (every 50 ms) and took nothing: the rows were younger than the grace, then sent.
      expect(relay.drains.every((n) => n === 0)).toBe(true);
    } finally {
      await relay.stop();
    }
  }, 300_000);

  it("never lets a drain take a row this process is still publishing, even with no grace", async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const sent: string[] = [];
    const sender: Sender = { async send(_t, m) { if (m.some((x) => x.key === "dc")) await hold; sent.push(...m.map((x) => x.key)); } };
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 10, direct: true, graceMs: 0 });
    relay.start();
    try {
      const enqueued = await commitRows(["dc"]);
      relay.notify(enqueued);
      const drainsBefore = relay.drains.length;
      await waitUntil("several drains while dc is being published", async () => relay.drains.length >= drainsBefore + 5, WAIT_MS, 10);
      release();
      await waitUntil("dc marked sent", async () => (await sentKeys(["dc"])) === 1, WAIT_MS, 10);
      // Stopped: every drain and publish it started has finished, so a second send of dc would be here.
      await relay.stop();
      expect(sent.filter((k) => k === "dc")).toEqual(["dc"]);
    } finally {
      release();
      await relay.stop();
    }
  }, 300_000);

  it("relays a commit nobody announced through the drain once older than the grace", async () => {
    const sender = recordingSender();
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 20, direct: true, graceMs: 300 });
    relay.start();
    try {
      await commitRows(["dd"]); // its committer died before notify()
      await waitUntil("dd relayed by the drain", async () => sender.sent.includes("dd"), WAIT_MS, 10);
      await waitUntil("dd marked sent", async () => (await sentKeys(["dd"])) === 1, WAIT_MS, 10);
      expect(relay.publishedDirect).toBe(0);
    } finally {
      await relay.stop();
    }
  }, 300_000);

  it("after a failed direct publish drains in id order, each row once, then publishes directly again", async () => {
    const sent: string[] = [];
    let failures = 1;
    const sender: Sender = { async send(_t, m) { if (failures > 0) { failures--; throw new Error("broker away"); } sent.push(...m.map((x) => x.key)); } };
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000, direct: true, graceMs: 3_600_000 });
    relay.start();
    try {
      await waitUntil("the first drain", async () => relay.drains.length >= 1, WAIT_MS, 10);
      relay.notify(await commitRows(["de"])); // fails: de stays unsent, the relay falls back to draining
      // Announced while falling back: drained without the grace even if the fallback ends first.
      relay.notify(await commitRows(["df"]));
      await waitUntil("de and df relayed", async () => sent.includes("de") && sent.includes("df"), WAIT_MS, 10);
      expect(sent).toEqual(["de", "df"]);
      await waitUntil("de and df marked sent", async () => (await sentKeys(["de", "df"])) === 2, WAIT_MS, 10);
      // Caught up: the next commit goes out directly again (the grace is an hour: no drain could take it).
      await waitUntil("direct publish resumed", async () => {
        relay.notify(await commitRows([`dg${relay.publishedDirect}${sent.length}`]));
        await new Promise((r) => setTimeout(r, 20));
        return relay.publishedDirect > 0;
      }, WAIT_MS, 10);
      expect(new Set(sent).size).toBe(sent.length);
    } finally {
      await relay.stop();
    }
  }, 300_000);

  it("stop() publishes and marks what committers handed over", async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    let publishing!: () => void;
    const entered = new Promise<void>((r) => (publishing = r));
    const sent: string[] = [];
    const sender: Sender = { async send(_t, m) { publishing(); await hold; sent.push(...m.map((x) => x.key)); } };
    const relay = new CountingRelay(pool, TABLE, sender, quiet, { intervalMs: 3_600_000, direct: true, graceMs: 3_600_000 });
    relay.start();
    relay.notify(await commitRows(["dh"]));
    const stopped = relay.stop();
    // stop() is under way while dh is being published: it waits for that publish and its mark.
    await entered;
    release();
    await stopped;
    expect(sent).toEqual(["dh"]);
    expect(await sentKeys(["dh"])).toBe(1);
  }, 300_000);
});

describe("outbox retention", () => {
  it("deletes sent rows older than the retention, oldest first, a batch at a time; never unsent or recent ones", async () => {
    const table = `test_outbox_retention_${randomBytes(4).toString("hex")}`;
    await pool.query(`CREATE TABLE ${table} (LIKE om_outbox INCLUDING ALL)`);
    try {
      // ids 1-6 sent four days ago, 7 never sent (four days old), 8-9 sent an hour ago, 10 unsent.
      const ages: Array<[string, string | null]> = [...Array(6).fill(["4 days", "4 days"]), ["4 days", null], ["1 hour", "1 hour"], ["1 hour", "1 hour"], ["1 second", null]];
      for (const [i, [created, sent]] of ages.entries())
        await pool.query(`INSERT INTO ${table} (event_id, topic, msg_key, payload, created_at, sent_at) VALUES ($1, 't', 'k', '{}', now() - $2::interval, now() - $3::interval)`, [`e${i + 1}`, created, sent]);
      const left = async () => (await pool.query<{ event_id: string }>(`SELECT event_id FROM ${table} ORDER BY id`)).rows.map((r) => r.event_id);
      const pruner = outboxPruner(pool, table, quiet, { retentionMs: 72 * 3_600_000, batch: 4 });
      // A pass looks at the 4 oldest rows only.
      expect(await pruner.once()).toBe(4);
      expect(await left()).toEqual(["e5", "e6", "e7", "e8", "e9", "e10"]);
      expect(await pruner.once()).toBe(2);
      expect(await pruner.once()).toBe(0);
      expect(await left()).toEqual(["e7", "e8", "e9", "e10"]);
      // A row a drain holds (FOR UPDATE) is skipped, not waited for.
      await pool.query(`UPDATE ${table} SET sent_at = now() - interval '4 days' WHERE event_id = 'e7'`);
      const holder = await pool.connect();
      try {
        await holder.query("BEGIN");
        await holder.query(`SELECT id FROM ${table} WHERE event_id = 'e7' FOR UPDATE`);
        expect(await pruner.once()).toBe(0);
        await holder.query("COMMIT");
      } finally {
        holder.release();
      }
      expect(await pruner.once()).toBe(1);
      expect(await left()).toEqual(["e8", "e9", "e10"]);
      expect(pruner.deleted).toBe(7);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }, 300_000);

  it("a relay given a retention prunes while it runs, and not after it stopped", async () => {
    const table = `test_outbox_retention_${randomBytes(4).toString("hex")}`;
    await pool.query(`CREATE TABLE ${table} (LIKE om_outbox INCLUDING ALL)`);
    const count = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
    const oldRow = (id: string) => pool.query(`INSERT INTO ${table} (event_id, topic, msg_key, payload, sent_at) VALUES ($1, 't', 'k', '{}', now() - interval '2 hours')`, [id]);
    const twinTable = `${table}_twin`;
    await pool.query(`CREATE TABLE ${twinTable} (LIKE om_outbox INCLUDING ALL)`);
    // The pool, counting the prune passes started on each table (a pass's DELETE is issued when its timer fires).
    const started = new Map<string, number>();
    const passes = (t: string) => started.get(t) ?? 0;
    const passCounting = new Proxy(pool, {
      get(target, key) {
        if (key === "query")
          return (text: unknown, ...rest: unknown[]) => {
            const deleting = typeof text === "string" && /^\s*WITH oldest AS/.test(text) && / DELETE FROM (\w+) t /.exec(text)?.[1];
            if (deleting) started.set(deleting, passes(deleting) + 1);
            return (target.query as (...a: unknown[]) => unknown)(text, ...rest);
          };
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      expect(() => new OutboxRelay(pool, table, recordingSender(), quiet, { retention: { retentionMs: -1 } })).toThrow(/bad outbox retention/);
      await oldRow("old-1");
      const retention = { retentionMs: 3_600_000, intervalMs: 20 };
      const relay = new OutboxRelay(passCounting, table, recordingSender(), quiet, { intervalMs: 3_600_000, retention });
      relay.start();
      await waitUntil("the old row pruned", async () => (await count()) === 0, WAIT_MS, 10);
      // A pass that found nothing ran since: the next one was due an interval (20 ms) later, not a backlog pause.
      const afterPrune = passes(table);
      await waitUntil("a pass after the prune", async () => passes(table) >= afterPrune + 1, WAIT_MS, 10);
      await relay.stop();
      const atStop = passes(table);
      await oldRow("old-2");
      // The witness: a pruner of the same interval, started after the stop on a table of its own. Its
      // timers fall due after the stopped one's would have (set earlier, no longer), so once it has run
      // three passes, a pass of the stopped relay would have started (and been counted) by then.
      const twin = outboxPruner(passCounting, twinTable, quiet, retention);
      twin.start();
      try {
        await waitUntil("the twin's third pass", async () => passes(twinTable) >= 3, WAIT_MS, 10);
      } finally {
        await twin.stop();
      }
      expect(passes(table)).toBe(atStop);
      expect(await count()).toBe(1);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.query(`DROP TABLE IF EXISTS ${twinTable}`);
    }
  }, 300_000);
});
