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
