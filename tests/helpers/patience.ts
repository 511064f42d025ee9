/**
 * Time in the tests on a loaded machine (README "How the suite stays green on a loaded machine").
 * Test files run two at a time on 2 cores, beside other builds and CPU hogs: a process can wait
 * seconds for a core, a timer fire seconds late. So:
 *   - a wait for what must happen is bounded by PATIENCE_MS, a guard against a hang only, never a
 *     latency target (that belongs in a benchmark);
 *   - a bound that must stay below what a defect would take (the 30 s a stalled client waited) is
 *     written beside the defect's time, not here;
 *   - a complexity check ("linear in the input's length") measures the CPU time the process spent
 *     (cpuMs), which waiting for a core does not inflate, not the wall clock;
 *   - "it did not happen" is shown by a positive signal that it would have by then (a later event
 *     handled, a pass run and found nothing), never by a fixed sleep.
 */

/** The bound on waiting for something that must happen (an answer, an event, a state), in ms. */
export const PATIENCE_MS = 30_000;

/**
 * The bound on a revocation (or any state the services push through Dragonfly pub/sub) reaching the
 * gateway. The push takes milliseconds; without it a process-local copy lives USER_STATE_LOCAL_TTL_MS
 * (30 s by default), so this bound stays well below that: a lost push still fails the test.
 */
export const PUSHED_WITHIN_MS = 10_000;

/** `promise`, or a failure naming `what` after `ms` (so that a hang fails the test instead of timing it out). */
export const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
};

/** The CPU time (user + system) this process spent running `fn`, in ms. */
export function cpuMs(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  return msSince(before);
}

/**
 * `fn`'s result and the CPU time this process spent while it ran, in ms: its own work and whatever
 * else the process did meanwhile (in-process services' timers), an upper bound on its own.
 */
export async function cpuMsWhile<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const before = process.cpuUsage();
  const result = await fn();
  return { result, ms: msSince(before) };
}

const msSince = (before: NodeJS.CpuUsage) => {
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / 1000;
};
