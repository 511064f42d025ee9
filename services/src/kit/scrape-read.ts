/**
 * One bounded read shared by a scrape's gauges: gauges read from a datastore when Prometheus scrapes
 * (portfolio-manager's totals, billing-service's held charges) are collected all at once, so the
 * first starts the read and the others join it. A read that fails or takes longer than `timeoutMs`
 * answers undefined (logged at warn): the gauges drop their series for that scrape, /metrics still
 * answers, and no stale figure is reported as current.
 */
import type { Logger } from "pino";
import { withTimeout } from "./deadline";

export function scrapeRead<T>(read: () => Promise<T>, what: string, log: Logger, timeoutMs: number): () => Promise<T | undefined> {
  let inflight: Promise<T | undefined> | undefined;
  const bounded = async (): Promise<T | undefined> => {
    try {
      return await withTimeout(read(), timeoutMs, what);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, `${what} unavailable; gauges left empty for this scrape`);
      return undefined;
    }
  };
  return () => (inflight ??= bounded().finally(() => (inflight = undefined)));
}
