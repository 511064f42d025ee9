/**
 * The kit's bounded lock waits, the pure part (session 58; kit datastores/postgres-contention.ts,
 * postgres.ts boundedLockStatements): a transaction's wait for its lock's turn in the process had no
 * bound in time or in number (a stuck holder let one key's requests pile up in memory until each
 * client gave up). Now a run waits at most its bound, and at most WAITING_PER_NAME / WAITING_IN_ALL
 * wait; past either, LockWaitError (SQLSTATE 55P03, transient: 503 with Retry-After; one key's crowd a 429). The wait for
 * PostgreSQL's lock is bounded by lock_timeout of the time left (tests/services/kit-postgres-lock-bounds.test.ts
 * on real PostgreSQL). No timing is asserted: a bound is seen passed, not measured.
 */
import { describe, expect, it } from "vitest";
import { createService, datastoreEnv, defineService, loadConfig, tooManyWaiting } from "../../services/src/kit";
import { advisoryLockStatement, boundedLockStatements, KeyedTurns, LockWaitError, LOCK_WAIT_DEFAULT_MS } from "../../services/src/kit/datastores/postgres";
import { checkWaitMs, lockTimeoutMs, WAITING_IN_ALL, WAITING_PER_NAME } from "../../services/src/kit/datastores/postgres-contention";
import { isTransientError } from "../../services/src/kit/transient-errors";
import { configProblems } from "../helpers/config-problems";

const settled = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: LockWaitError) => ({ ok: false as const, error }));
/** A run that holds `name`'s turn until `letGo()`. */
function holder(turns: KeyedTurns, name: string) {
  let letGo!: () => void;
  const gate = new Promise<void>((r) => (letGo = r));
  const done = turns.run(name, () => gate);
  return { done, letGo };
}
const linesOf = (turns: KeyedTurns) => (turns as unknown as { lines: Map<string, unknown> }).lines.size;

describe("KeyedTurns: a bound on how long a run waits for its turn", () => {
  it("a run whose turn has not come within its bound ends with LockWaitError (55P03, transient); the runs behind it keep their order and run once the holder ends", async () => {
    const turns = new KeyedTurns({ waitMs: 60_000 });
    const order: string[] = [];
    const held = holder(turns, "user-4711");
    const first = turns.run("user-4711", async () => order.push("first"));
    const short = settled(turns.run("user-4711", async () => order.push("short"), 20)); // a bound of its own (TransactionOptions.lockWaitMs)
    const last = turns.run("user-4711", async () => order.push("last"));
    const r = await short;
    expect(r.ok).toBe(false);
    const e = (r as { error: LockWaitError }).error;
    expect(e).toBeInstanceOf(LockWaitError);
    expect([e.code, e.reason]).toEqual(["55P03", "waited"]);
    expect(isTransientError(e)).toBe(true); // the error handler's 503 DATASTORE_UNAVAILABLE with Retry-After
    expect(e.message).not.toMatch(/POSTGRES|user-4711/); // neither the setting nor the key
    expect(order).toEqual([]); // its fn never ran
    expect([turns.waiting, turns.waitingFor("user-4711")]).toEqual([2, 2]);
    held.letGo();
    await Promise.all([held.done, first, last]);
    expect(order).toEqual(["first", "last"]);
    expect([turns.waiting, linesOf(turns)]).toEqual([0, 0]);
  });

  it("the bound is the default given (POSTGRES_LOCK_WAIT_MS); a run that got its turn gets its deadline, from when it asked, for PostgreSQL's lock", async () => {
    const turns = new KeyedTurns({ waitMs: 30 });
    const held = holder(turns, "d");
    const waiting = settled(turns.run("d", async () => "ran"));
    expect(await waiting).toMatchObject({ ok: false, error: { code: "55P03", reason: "waited" } });
    held.letGo();
    await held.done;
    const asked = performance.now();
    const deadline = await new KeyedTurns({ waitMs: 5_000 }).run("e", async (d) => d);
    expect(deadline).toBeGreaterThanOrEqual(asked + 5_000);
    expect(deadline).toBeLessThanOrEqual(performance.now() + 5_000);
  });

  it("a holder that fails still hands the turn on; a run past its bound after its turn came is not cut (the bound is on waiting)", async () => {
    const turns = new KeyedTurns({ waitMs: 60_000 });
    const failing = settled(turns.run("f", async () => Promise.reject(new Error("boom"))));
    const next = turns.run("f", async () => new Promise<string>((r) => setTimeout(() => r("slow but running"), 50)), 10);
    expect((await failing).ok).toBe(false);
    expect(await next).toBe("slow but running");
    expect(linesOf(turns)).toBe(0);
  });
});

describe("KeyedTurns: a bound on how many wait", () => {
  it(`one more than waitingPerName for one name is refused at once ("crowded"), before it queues; other names are not`, async () => {
    const turns = new KeyedTurns({ waitMs: 60_000, waitingPerName: 2 });
    const held = holder(turns, "crowd");
    const waiters = [turns.run("crowd", async () => 1), turns.run("crowd", async () => 2)];
    const refused = await settled(turns.run("crowd", async () => 3));
    expect(refused).toMatchObject({ ok: false, error: { code: "55P03", reason: "crowded" } });
    expect(isTransientError((refused as { error: unknown }).error)).toBe(true);
    expect(turns.waitingFor("crowd")).toBe(2);
    const elsewhere = holder(turns, "other");
    const otherWaiter = turns.run("other", async () => "other");
    held.letGo();
    elsewhere.letGo();
    expect(await Promise.all(waiters)).toEqual([1, 2]);
    expect(await otherWaiter).toBe("other");
    // Once the line is shorter, a newcomer waits again.
    expect(await turns.run("crowd", async () => 4)).toBe(4);
  });

  it("one more than waitingInAll across names is refused at once", async () => {
    const turns = new KeyedTurns({ waitMs: 60_000, waitingPerName: 10, waitingInAll: 2 });
    const a = holder(turns, "a");
    const b = holder(turns, "b");
    const waiters = [turns.run("a", async () => "a"), turns.run("b", async () => "b")];
    expect(await settled(turns.run("a", async () => "a2"))).toMatchObject({ ok: false, error: { reason: "full" } });
    expect(await settled(turns.run("c-free", async () => "free"))).toEqual({ ok: true, value: "free" }); // no wait: not refused
    a.letGo();
    b.letGo();
    expect(await Promise.all(waiters)).toEqual(["a", "b"]);
    expect(turns.waiting).toBe(0);
  });

  it("the defaults: 10 s, 64 per name, 1,024 in all; bounds that are no bound are refused", () => {
    expect(new KeyedTurns().bounds).toEqual({ waitMs: LOCK_WAIT_DEFAULT_MS, waitingPerName: WAITING_PER_NAME, waitingInAll: WAITING_IN_ALL });
    expect([LOCK_WAIT_DEFAULT_MS, WAITING_PER_NAME, WAITING_IN_ALL]).toEqual([10_000, 64, 1_024]);
    for (const bad of [0, -1, Number.NaN, Infinity]) expect(() => new KeyedTurns({ waitMs: bad })).toThrow(/positive number of milliseconds/);
    expect(() => new KeyedTurns({ waitingPerName: 1.5 })).toThrow(/waitingPerName must be a whole number/);
    expect(() => checkWaitMs(0, "lockWaitMs")).toThrow(/^lockWaitMs must be/);
  });
});

describe("the wait for PostgreSQL's lock: lock_timeout of the time left, set back after the lock", () => {
  it("lockTimeoutMs: whole ms, rounded up, at least 1 (0 would be no timeout)", () => {
    expect(lockTimeoutMs(1_000.2, 0)).toBe(1_001);
    expect(lockTimeoutMs(100, 100)).toBe(1);
    expect(lockTimeoutMs(100, 5_000)).toBe(1);
  });

  it("boundedLockStatements: the timeout, the lock, the session's default again", () => {
    expect(boundedLockStatements(advisoryLockStatement({ space: 1, key: "u" }), 2_500, 0)).toEqual([
      "SET LOCAL lock_timeout = 2500",
      "SELECT pg_advisory_xact_lock(1, hashtext('u'))",
      "SET LOCAL lock_timeout = DEFAULT",
    ]);
  });
});

describe("POSTGRES_LOCK_WAIT_MS", () => {
  it("defaults to 10 s, takes 100 ms to 10 min, and refuses others naming itself", () => {
    const url = { POSTGRES_URL: "postgresql://app@127.0.0.1:5432/db" };
    expect(loadConfig("svc", datastoreEnv.postgres, url).POSTGRES_LOCK_WAIT_MS).toBe(10_000);
    expect(loadConfig("svc", datastoreEnv.postgres, { ...url, POSTGRES_LOCK_WAIT_MS: "600000" }).POSTGRES_LOCK_WAIT_MS).toBe(600_000);
    expect(configProblems("svc", datastoreEnv.postgres, { ...url, POSTGRES_LOCK_WAIT_MS: "0" })).toEqual(['POSTGRES_LOCK_WAIT_MS must be >= 100 (got "0")']);
    expect(configProblems("svc", datastoreEnv.postgres, { ...url, POSTGRES_LOCK_WAIT_MS: "600001" })).toEqual(['POSTGRES_LOCK_WAIT_MS must be <= 600000 (got "600001")']);
  });
});

describe("a route's answer to LockWaitError (kit errors.ts)", () => {
  it("one key's crowd is 429 TOO_MANY_WAITING with Retry-After (the senders' burst); a wait past its bound or a full process is 503 DATASTORE_UNAVAILABLE; neither names the lock", async () => {
    const probe = defineService({
      name: "central-hub", // any catalog entry: its datastore is never reached
      config: {},
      register({ app }) {
        app.get("/:reason", async (req) => {
          throw new LockWaitError((req.params as { reason: "waited" | "crowded" | "full" }).reason, "64 transactions already wait for user-4711's lock");
        });
      },
    });
    const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
    const app = svc.app;
    const answers = await Promise.all(["crowded", "full", "waited"].map(async (reason) => {
      const r = await app.inject({ method: "GET", url: `/${reason}` });
      expect(r.body).not.toMatch(/user-4711|POSTGRES|lock's/);
      return [reason, r.statusCode, r.json().error?.code, r.headers["retry-after"]];
    }));
    expect(answers).toEqual([
      ["crowded", 429, "TOO_MANY_WAITING", "1"],
      ["full", 503, "DATASTORE_UNAVAILABLE", "1"],
      ["waited", 503, "DATASTORE_UNAVAILABLE", "1"],
    ]);
    await svc.close();
  });

  // Session 59: the crowd's answer is the HttpError tooManyWaiting(), answered through the handler's one
  // HttpError branch; its status, header, body and log line are those of its own branch before.
  it("the crowd's answer is tooManyWaiting(): exactly its status, header and body, the lock named in the warn line only", async () => {
    const lines: string[] = [];
    const probe = defineService({
      name: "central-hub",
      config: {},
      register({ app }) {
        app.get("/crowded", async () => {
          throw new LockWaitError("crowded", "64 transactions already wait for user-4711's lock");
        });
        app.get("/thrown", async () => {
          throw tooManyWaiting();
        });
      },
    });
    const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "info" }, defaultMetrics: false, logStream: { write: (s: string) => void lines.push(s) } });
    const answer = (r: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }) => [r.statusCode, r.headers["retry-after"], r.json()];
    const crowded = await svc.app.inject({ method: "GET", url: "/crowded", headers: { "x-request-id": "crowd-1" } });
    const thrown = await svc.app.inject({ method: "GET", url: "/thrown", headers: { "x-request-id": "crowd-1" } });
    const expected = [429, "1", { error: { code: "TOO_MANY_WAITING", message: "Too many requests for the same thing are already waiting; retry shortly", requestId: "crowd-1" } }];
    expect(answer(crowded)).toEqual(expected);
    expect(answer(thrown)).toEqual(expected);
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } });
    expect(logged.filter((l) => l.msg === "too many requests wait for the same lock").map((l) => [l.level, l.err?.message])).toEqual([[40, "64 transactions already wait for user-4711's lock"]]);
    expect(logged.filter((l) => l.msg === "request failed")).toEqual([]); // a 4xx, not a failure of the service
    await svc.close();
  });
});
