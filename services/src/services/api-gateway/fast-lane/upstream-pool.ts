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
import { connect, type Socket } from "node:net";
import type { Logger } from "pino";
import type { ConnectionBudget, ConnectionHolder } from "../upstream-budget";
import { BUFFER_LIMIT_BYTES, type UpstreamAnswerTimes, type UpstreamFailure } from "../upstreams";
import { newParser, type LlhttpParser } from "./llhttp";
import { closedError, failureOf, lengthMismatch } from "./upstream-failures";
import type { Exchange, PooledAnswer, StreamSink } from "./upstream-exchange";
import { PooledRequest, type Carried, type Sent } from "./pooled-request";

export type { Sent };

export class UpstreamConnection {
  readonly socket: Socket;
  private readonly parser: LlhttpParser;
  exchange: Carried | undefined;
  private status = 0;
  private rawHeaders: string[] = [];
  private chunks: Buffer[] = [];
  private size = 0;
  private keepAlive = true;
  private received = false;
  private sink: StreamSink | undefined;

  constructor(
    private readonly pool: BasePool,
    port: number,
    host: string,
  ) {
    this.socket = connect({ port, host, noDelay: true });
    this.parser = newParser("response", 0, {
      headersComplete: (_maj, _min, headers, _m, _u, statusCode, _sm, upgrade, keepAlive) => {
        // A 101 (never asked for): no HTTP follows; taken as a closed connection, as undici does.
        if (upgrade || statusCode === 101) return void this.fail(closedError());
        this.status = statusCode;
        this.rawHeaders = headers ?? [];
        this.keepAlive = keepAlive;
        return this.exchange?.head_only ? 1 : 0; // 1: no body follows (the answer to a HEAD)
      },
      body: (b) => this.onBody(b),
      messageComplete: () => this.onComplete(),
    });
    this.socket.on("data", (d: Buffer) => {
      this.received = true;
      // `guarded` written out: no closure made for every read (the lane's common path).
      const x = this.exchange;
      try {
        this.failed(this.parser.execute(d));
      } catch (err) {
        this.broken(x, err);
      }
    });
    // An answer without a length ends at the close (Connection: close, HTTP/1.0); one cut short is a closed connection (undici's).
    this.socket.on("end", () => this.guarded(() => void (this.exchange && this.parser.finish() instanceof Error && this.fail(closedError()))));
    this.socket.on("error", (err) => this.guarded(() => this.fail(err)));
    this.socket.on("close", () => this.guarded(() => this.fail(closedError())));
    this.socket.on("timeout", () => {
      if (!this.exchange) return void this.socket.destroy(); // idle past keepAliveTimeoutMs
      // A streamed answer's upstream silent past bodyTimeoutMs (not paused for the client): cut, as undici's
      // bodyTimeout does on the Fastify path (until session 58 held for good, its pool slot and client's place too).
      if (this.sink && !this.socket.isPaused()) this.guarded(() => this.fail(new Error("upstream body timeout")));
    });
    this.socket.setTimeout(pool.keepAliveTimeoutMs);
  }

  send(x: Carried): void {
    this.exchange = x;
    this.status = 0;
    this.chunks = [];
    this.size = 0;
    this.received = false;
    this.sink = undefined;
    this.socket.write(x.head);
  }

  private onBody(b: Buffer): void {
    if (this.sink) {
      if (!this.sink.write(Buffer.from(b))) {
        this.socket.pause();
        this.sink.resume = this.resumed;
      }
      return;
    }
    this.chunks.push(Buffer.from(b)); // the binding's slice is of a buffer it reuses
    this.size += b.length;
    if (this.size <= BUFFER_LIMIT_BYTES || !this.exchange) return;
    const body = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    const sink: StreamSink = { write: () => true };
    this.sink = sink;
    this.socket.setTimeout(this.exchange.bodyTimeoutMs);
    this.exchange.onStream({ statusCode: this.status, rawHeaders: this.rawHeaders, body }, sink);
  }

  private onComplete(): void {
    if (this.status < 200) return; // 103 Early Hints, 100 Continue: the answer comes next (undici skips them too)
    // A 204's or 304's Content-Length (read as bodiless): no answer, as undici's length check says.
    if (!this.exchange?.head_only && !this.sink && lengthMismatch(this.rawHeaders, this.size)) return this.fail(new Error("upstream answer length mismatch"));
    const x = this.exchange;
    this.exchange = undefined;
    const sink = this.sink;
    this.sink = undefined;
    // The answer read out before `release`: a waiting request takes this connection there (`send` resets it).
    const answer = { statusCode: this.status, rawHeaders: this.rawHeaders, body: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size) };
    this.chunks = [];
    this.pool.answers.answered(this.pool.key);
    if (sink) this.socket.setTimeout(this.pool.keepAliveTimeoutMs);
    if (this.keepAlive && !this.socket.destroyed) this.pool.release(this);
    else this.socket.destroy();
    if (sink) sink.write(null);
    else x?.onAnswer(answer);
  }

  /** The client took what it was sent: the upstream read again, its silence timed from now. */
  private readonly resumed = (): void => {
    this.socket.resume();
    if (this.exchange) this.socket.setTimeout(this.exchange.bodyTimeoutMs);
  };

  /** What the parser said: an Error fails the connection. */
  private failed = (r: number | Error | undefined): void => void (r instanceof Error && this.fail(r));

  /** The connection is done for; a request on it fails (once). */
  fail(err: Error): void {
    // Closed before its slot is given back (`forget`): the service never sees the next connection first.
    if (!this.socket.destroyed) this.socket.destroy();
    this.pool.forget(this);
    const x = this.exchange;
    this.exchange = undefined;
    const sink = this.sink;
    this.sink = undefined;
    if (sink) sink.write(null, err);
    else x?.onFailure(err, failureOf(err), this.received);
  }

  private guarded(handle: () => void): void {
    const x = this.exchange;
    try {
      handle();
    } catch (err) {
      this.broken(x, err);
    }
  }

  /**
   * A throw out of an event's handling (a fault of the lane's, which would end the process and every
   * client's requests with it): the request that was in flight (`x`) is ended by its exchange (logged,
   * its client's connection closed), and this connection with it, whose parser may be mid-answer; a
   * request that took the connection after x's answer fails over to a new one (closed before any answer).
   */
  private broken(x: Carried | undefined, err: unknown): void {
    if (this.exchange === x) [this.exchange, this.sink] = [undefined, undefined];
    try {
      this.fail(closedError());
    } finally {
      if (x) x.broken(err);
      else this.pool.log.error({ err }, "fast lane: an upstream connection failed outside any request; closed");
    }
  }

  /** Gives up the request in flight (the lane's timeout, the client gone): the connection cannot be reused. */
  abandon(): void {
    this.exchange = undefined;
    this.sink = undefined;
    this.socket.destroy();
    this.pool.forget(this);
  }
}

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
