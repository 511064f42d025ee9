/**
 * Client helpers for other services: keep an instance registered in central-hub, and run a
 * singleton job under a hub lock. Plain fetch against the hub's base URL
 * (`peerBaseUrl("central-hub", ctx.env)`: SERVICE_CENTRAL_HUB_URL or http://central-hub:7000).
 *
 *   const hb = startHeartbeat({ baseUrl: peerBaseUrl("central-hub", ctx.env), service: ctx.name,
 *     id: os.hostname(), version, address: `http://${os.hostname()}:${ctx.config.PORT}`, log: ctx.log });
 *   ctx.onClose(() => hb.stop());
 *   await withHubLock({ baseUrl, name: "daily-report", owner: os.hostname(), ttlMs: 30_000 }, async (lock) => { ... });
 */
import { randomUUID } from "node:crypto";
import { FailureStreak } from "../../kit/failure-streak";
import type { Health } from "./registry";

interface Log {
  warn(obj: object, msg?: string): void;
}

async function hubFetch(baseUrl: string, method: string, path: string, body?: unknown, timeoutMs = 5_000, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl.replace(/\/+$/, "")}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

export interface HeartbeatOptions {
  baseUrl: string;
  service: string;
  id: string;
  version: string;
  address: string;
  /** Heartbeat period; the TTL is 3 periods so one lost heartbeat does not drop the instance. */
  intervalMs?: number;
  health?: () => Health | Promise<Health>;
  metadata?: Record<string, string>;
  log?: Log;
}

export function startHeartbeat(opts: HeartbeatOptions): { stop(): Promise<void>; beat(): Promise<void> } {
  const interval = opts.intervalMs ?? 5_000;
  const path = `/instances/${encodeURIComponent(opts.service)}/${encodeURIComponent(opts.id)}`;
  const failures = new FailureStreak();
  let stopped = false;
  const beat = async () => {
    try {
      const health = opts.health ? await opts.health() : "healthy";
      const r = await hubFetch(opts.baseUrl, "PUT", path, {
        version: opts.version,
        address: opts.address,
        health,
        metadata: opts.metadata,
        ttlMs: interval * 3,
      });
      if (r.status >= 300) throw new Error(`central-hub answered ${r.status}`);
      failures.worked();
    } catch (e) {
      if (failures.failed()) opts.log?.warn({ err: { message: (e as Error).message } }, "central-hub heartbeat failed (will retry)");
    }
  };
  const timer = setInterval(() => void beat(), interval);
  timer.unref();
  void beat();
  return {
    beat,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await hubFetch(opts.baseUrl, "DELETE", path, undefined, 2_000).catch(() => undefined);
    },
  };
}

export class LockHeldError extends Error {
  constructor(
    readonly lockName: string,
    readonly holder: unknown,
  ) {
    super(`lock ${lockName} is held by another owner`);
    this.name = "LockHeldError";
  }
}

export interface HeldLock {
  name: string;
  token: string;
  fencingToken: number;
  /** Aborted when the lock could not be renewed (lost): stop side effects. */
  signal: AbortSignal;
}

/**
 * Acquires with a fresh Idempotency-Key and, when the first try ends without an answer (timeout,
 * connection reset, unreadable body), tries once more with the same key: if the hub acquired on the
 * first try, the retry answers that acquisition (same token and fencing number) instead of a 409
 * against ourselves that would leave the lock unused until its TTL.
 */
async function acquireRetryingOnce(opts: { baseUrl: string; name: string; owner: string; ttlMs: number; log?: Log }) {
  const path = `/locks/${encodeURIComponent(opts.name)}/acquire`;
  const key = randomUUID(); // one per acquisition: the next run must not be taken for a retry of this one
  const attempt = () => hubFetch(opts.baseUrl, "POST", path, { owner: opts.owner, ttlMs: opts.ttlMs }, 5_000, { "idempotency-key": key });
  const sentAt = Date.now(); // the first try's: the acquisition may have happened then
  try {
    return { sentAt, ...(await attempt()) };
  } catch (e) {
    opts.log?.warn({ err: { message: (e as Error).message } }, "central-hub lock acquire got no answer; retrying with the same key");
    return { sentAt, ...(await attempt()) };
  }
}

/**
 * Runs `fn` while holding lock `name`: acquires (LockHeldError if someone else holds it), renews
 * every ttl/3, releases when `fn` settles. Aborts `lock.signal` when a renewal is refused, and when
 * the TTL counted from the last request the hub answered (acquire or renewal) runs out with no
 * renewal answered: the hub has let the lock go by then, whether it heard the renewals or not.
 */
export async function withHubLock<T>(
  opts: { baseUrl: string; name: string; owner: string; ttlMs: number; log?: Log },
  fn: (lock: HeldLock) => Promise<T>,
): Promise<T> {
  const base = `/locks/${encodeURIComponent(opts.name)}`;
  const acq = await acquireRetryingOnce(opts);
  if (acq.status === 409 && (acq.body?.error as { code?: string } | undefined)?.code === "LOCKED") throw new LockHeldError(opts.name, acq.body?.holder);
  if (acq.status !== 200) throw new Error(`central-hub lock acquire answered ${acq.status}`);
  const token = acq.body!.token as string;
  const lost = new AbortController();
  let expiry: NodeJS.Timeout | undefined;
  const lose = (why: string) => {
    clearInterval(renew);
    clearTimeout(expiry);
    if (!lost.signal.aborted) lost.abort(new Error(`lock ${opts.name} ${why}`));
  };
  // Counted from when the answered request was sent, on this clock: never later than the hub's expiry.
  const expiresFrom = (sentAt: number) => {
    clearTimeout(expiry);
    expiry = setTimeout(() => lose("expired with no renewal answered"), Math.max(0, sentAt + opts.ttlMs - Date.now()));
    expiry.unref();
  };
  const renew = setInterval(async () => {
    const sentAt = Date.now();
    try {
      const r = await hubFetch(opts.baseUrl, "POST", `${base}/renew`, { token, ttlMs: opts.ttlMs });
      if (r.status === 404 || r.status === 409) lose("lost");
      else if (r.status === 200 && !lost.signal.aborted) expiresFrom(sentAt);
    } catch (e) {
      opts.log?.warn({ err: { message: (e as Error).message } }, "lock renewal failed (will retry)");
    }
  }, Math.max(50, Math.floor(opts.ttlMs / 3)));
  renew.unref();
  expiresFrom(acq.sentAt);
  try {
    return await fn({ name: opts.name, token, fencingToken: acq.body!.fencingToken as number, signal: lost.signal });
  } finally {
    clearInterval(renew);
    clearTimeout(expiry);
    // Even after an abort: a renewal the hub heard but whose answer came late may still hold it.
    await hubFetch(opts.baseUrl, "POST", `${base}/release`, { token }).catch(() => undefined);
  }
}
