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
import type { ConnectionBudget, ConnectionHolder } from "../upstream-budget";
import type { UpstreamAnswerTimes } from "../upstreams";
import type { Exchange } from "./upstream-exchange";
import { PooledRequest, type Sent } from "./pooled-request";
import { UpstreamConnection } from "./upstream-connection";

export type { Sent };
export { UpstreamConnection };

/**
 * One base's connections. Past the budget a request waits here (`waiting`; the budget queues one slot for
 * each) until a connection comes free or a slot is given back; the one that comes free goes to whichever
 * pool waits longest (the Fastify path's: closed for it). While nothing waits, reusing an idle connection
 * touches the budget only to read that nothing waits.
 */
export class BasePool implements ConnectionHolder {
  private readonly idle: UpstreamConnection[] = [];
  private readonly all = new Set<UpstreamConnection>();
  private readonly waiting: PooledRequest[] = [];

  constructor(
    private readonly port: number,
    private readonly host: string,
    /** This service's connections, the Fastify path's and the lane's (../upstream-budget.ts). */
    private readonly budget: ConnectionBudget,
    readonly keepAliveTimeoutMs: number,
    /** The gateway's record of each upstream's last answer (../upstreams.ts), keyed by `key` (host:port). */
    readonly answers: UpstreamAnswerTimes,
    readonly key: string,
    readonly log: Logger,
  ) {
    budget.join(this);
  }

  /** A connection for one exchange, now or when one is free; `fresh`: a new one (a resend, as undici's). */
  acquire(r: PooledRequest, fresh = false): void {
    const c = fresh ? undefined : this.idle.pop();
    if (c) return r.take(c);
    if (this.budget.take(this)) return this.open(r);
    this.waiting.push(r);
    this.budget.reclaim(this);
  }

  /**
   * `r` gave up while it waited for a connection (its client went away, or its time ran out): out of the queue
   * and its slot's place in the budget's line with it, at once. Left there, a slot that came for it opened a
   * connection for nobody, and the other path waited behind it for its turn.
   */
  leaveQueue(r: PooledRequest): void {
    const i = this.waiting.indexOf(r);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    this.budget.withdraw(this, true);
  }

  release(c: UpstreamConnection): void {
    const first = this.budget.next;
    // Another pool waits longer for a slot: this connection closed for it (its slot passes on at `forget`).
    if (first !== undefined && first !== this) return c.abandon();
    const next = this.waiting.shift();
    if (next) {
      this.budget.withdraw(this);
      return next.take(c);
    }
    this.idle.push(c);
  }

  forget(c: UpstreamConnection): void {
    if (!this.all.delete(c)) return;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // Its slot to the pool waiting longest: this one's next request gets a new connection in its place (`granted`).
    this.budget.give();
  }

  granted(): void {
    const next = this.waiting.shift();
    if (next) this.open(next);
    else this.budget.give();
  }

  closeIdle(): boolean {
    const c = this.idle.shift();
    if (!c) return false;
    c.abandon();
    return true;
  }

  close(): void {
    this.budget.leave(this);
    this.waiting.length = 0;
    for (const c of [...this.all]) c.abandon();
  }

  /** A new connection for `r`, its slot taken. */
  private open(r: PooledRequest): void {
    const c = new UpstreamConnection(this, this.port, this.host);
    this.all.add(c);
    r.take(c);
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
