/**
 * The fast lane's upstream side: kept-alive node:net connections to each upstream base, as many as the
 * service's connection budget lets it hold (../upstream-budget.ts: one count with the Fastify path's
 * connections, ../index.ts UPSTREAM_CONNECTIONS in all), one request at a time on each (no pipelining:
 * measured, it made user-management slower, docs/measurements/gateway.md), every answer parsed by
 * Node's own llhttp binding (./llhttp.ts) in strict mode.
 *
 * An answer is buffered whole up to ../upstreams.ts BUFFER_LIMIT_BYTES (1 MiB), as the Fastify path
 * buffers it: the platform's answers are small JSON documents, and one write with a Content-Length
 * is the cheapest answer. Beyond that it is streamed (`onStream`): the buffered part, then each chunk
 * as it arrives, the upstream socket paused while the client's socket is over its high-water mark,
 * so a large or endless answer holds at most the limit plus the sockets' buffers; an upstream silent
 * mid-stream (not paused) past the request's upstream timeout is cut, as undici's bodyTimeout on the
 * Fastify path (./upstream-exchange.ts bodyTimeoutMs). A chunked answer is decoded by the parser either way.
 *
 * An upstream restarting, as ../upstreams.ts takes it: a request whose connection was refused, or
 * closed before any of its answer came (the lane sends GET and HEAD only), is sent once more on a new
 * connection; failing again, it is `restarting` when the upstream answered within RESTART_WINDOW_MS.
 */
import type { Logger } from "pino";
import { BudgetedPool, type PoolMembers } from "../budgeted-pool";
import type { ConnectionBudget } from "../upstream-budget";
import { notForwarded } from "../upstream-errors";
import type { UpstreamAnswerTimes } from "../upstreams";
import type { Exchange } from "./upstream-exchange";
import { PooledRequest, type Sent } from "./pooled-request";
import { UpstreamConnection } from "./upstream-connection";

export type { Sent };
export { UpstreamConnection };

/**
 * One base's connections. Past the budget a request waits here (the budget queues one slot for each) until a
 * connection comes free or a slot is given back; the one that comes free goes to whichever pool waits longest
 * (the Fastify path's: closed for it). While nothing waits, reusing an idle connection touches the budget only
 * to read that nothing waits. That protocol is ../budgeted-pool.ts's (the Fastify path's pool's too); here is
 * what is the lane's: an UpstreamConnection opened, given to a PooledRequest, abandoned.
 */
export class BasePool implements PoolMembers<UpstreamConnection, PooledRequest> {
  private readonly slots: BudgetedPool<UpstreamConnection, PooledRequest>;

  constructor(
    private readonly port: number,
    private readonly host: string,
    /** This service's connections, the Fastify path's and the lane's (../upstream-budget.ts). */
    budget: ConnectionBudget,
    readonly keepAliveTimeoutMs: number,
    /** The gateway's record of each upstream's last answer (../upstreams.ts), keyed by `key` (host:port). */
    readonly answers: UpstreamAnswerTimes,
    readonly key: string,
    readonly log: Logger,
  ) {
    this.slots = new BudgetedPool(budget, this);
  }

  /** A connection for one exchange, now or when one is free; `fresh`: a new one (a resend, as undici's). */
  acquire(r: PooledRequest, fresh = false): void {
    const c = this.slots.now(fresh);
    if (c !== undefined) return r.take(c);
    this.slots.wait(r);
  }

  /** `r` gave up while it waited for a connection (its client went away, or its time ran out): ../budgeted-pool.ts leaveQueue. */
  leaveQueue(r: PooledRequest): void {
    this.slots.leaveQueue(r);
  }

  release(c: UpstreamConnection): void {
    this.slots.release(c);
  }

  /** `c` is closed: its slot to the pool waiting longest, whose next request gets a new connection in its place. */
  forget(c: UpstreamConnection): void {
    this.slots.forget(c);
  }

  /** Its requests still waiting answered 503 SHUTTING_DOWN (../budgeted-pool.ts close); every connection closed, a request's on it too. */
  close(): void {
    this.slots.close();
    for (const c of this.slots.connections()) c.abandon();
  }

  open(): UpstreamConnection {
    return new UpstreamConnection(this, this.port, this.host);
  }

  hand(r: PooledRequest, c: UpstreamConnection): void {
    r.take(c);
  }

  /** Closed for another pool, or idle at the close: its slot passes on at `forget`. */
  retire(c: UpstreamConnection): void {
    c.abandon();
  }

  refuse(r: PooledRequest): void {
    r.refuse(notForwarded());
  }
}

export class UpstreamPool {
  private readonly bases = new Map<string, BasePool>();

  /** connections: each service's budget, the number `answers.budgets` holds (../index.ts gives both), shared, not the lane's own. */
  constructor(private readonly o: { connections: number; keepAliveTimeoutMs: number; answers: UpstreamAnswerTimes; log: Logger }) {}

  /**
   * Sends `x` to `base` (http://host:port). A request whose connection was refused or closed before
   * any of its answer came is sent once more on a new one (nothing of a GET or HEAD can have been
   * acted on), as ../upstreams.ts does; failing again, `restarting` says whether the upstream
   * answered within RESTART_WINDOW_MS.
   */
  send(base: URL, x: Exchange): Sent {
    const key = base.host;
    let pool = this.bases.get(key);
    if (!pool) {
      pool = new BasePool(Number(base.port || 80), base.hostname, this.o.answers.budgets.of(key), this.o.keepAliveTimeoutMs, this.o.answers, key, this.o.log);
      this.bases.set(key, pool);
    }
    const sent = new PooledRequest(pool, x);
    pool.acquire(sent);
    return sent;
  }

  close(): void {
    for (const p of this.bases.values()) p.close();
    this.bases.clear();
  }
}
