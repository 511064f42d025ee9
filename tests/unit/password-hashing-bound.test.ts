/** The scrypt semaphore of user-management: a bounded number running, a bounded queue, 429 beyond. */
import { describe, expect, it } from "vitest";
import { HashingBusyError, Semaphore } from "../../services/src/services/user-management/passwords";

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe("password hashing bound", () => {
  it("runs at most `max` at once, queues `maxWaiting`, refuses the rest with 429 and Retry-After", async () => {
    const sem = new Semaphore(2, 3);
    let running = 0;
    let peak = 0;
    const gates = Array.from({ length: 5 }, gate);
    const runs = gates.map((g) =>
      sem.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await g.opened;
        running--;
        return "done";
      }),
    );
    const refused = await sem.run(async () => "never").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HashingBusyError);
    expect(refused).toMatchObject({ statusCode: 429, code: "TOO_MANY_REQUESTS", headers: { "retry-after": "1" } });
    for (const g of gates) g.open();
    expect(await Promise.all(runs)).toEqual(["done", "done", "done", "done", "done"]);
    expect(peak).toBe(2);
  });

  it("hands a released slot to the first waiter: a newcomer never makes it three at once", async () => {
    const sem = new Semaphore(1, 10);
    let running = 0;
    let peak = 0;
    const task = () =>
      sem.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setImmediate(r));
        running--;
      });
    const first = task();
    const second = task();
    await first;
    await Promise.all([second, task(), task()]);
    expect(peak).toBe(1);
  });

  it("frees the slot when the work fails", async () => {
    const sem = new Semaphore(1, 0);
    await expect(sem.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await sem.run(async () => "ok")).toBe("ok");
  });
});
