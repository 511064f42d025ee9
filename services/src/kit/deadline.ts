import { setMaxListeners } from "node:events";

/**
 * One bound on how long a caller waits for a promise: the readiness probes, the scheduled jobs' run
 * records, database-service's datastore probes, portfolio-manager's gauges and ai-orchestrator's
 * similar-regimes lookup each wrote it out again. The work itself is not stopped (a client without
 * a deadline of its own keeps its call going); the caller goes on with the rejection.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * An AbortSignal aborted `graceMs` after `signal` is (the kit's `closing`: a call almost done when
 * the shutdown begins may finish, one that is not is cut). Its timer does not keep the process alive.
 */
export function afterGrace(signal: AbortSignal, graceMs: number): AbortSignal {
  const graced = new AbortController();
  // Every call in flight listens on this one signal (unlessAborted adds and removes a listener per
  // call): dozens at once are normal, not a leak, so Node's warning past 10 listeners is turned off.
  setMaxListeners(0, graced.signal);
  const start = () => void setTimeout(() => graced.abort(signal.reason), graceMs).unref();
  if (signal.aborted) start();
  else signal.addEventListener("abort", start, { once: true });
  return graced.signal;
}

/**
 * `p`, or a rejection with `cut()` once `signal` aborts before it settles. As withTimeout, the work
 * is not stopped (a client without a signal of its own): the caller stops waiting for it.
 */
export function unlessAborted<T>(p: Promise<T>, signal: AbortSignal, cut: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(cut());
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(cut());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}
