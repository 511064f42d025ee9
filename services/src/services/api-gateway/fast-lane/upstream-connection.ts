/**
 * One of the fast lane's kept-alive node:net connections to an upstream (./upstream-pool.ts holds them), one
 * request at a time (no pipelining), its answer parsed by Node's own llhttp binding (./llhttp.ts) in strict
 * mode, buffered whole up to ../upstreams.ts BUFFER_LIMIT_BYTES or streamed beyond (./upstream-pool.ts says how).
 * (Its own file since session 60: upstream-pool.ts had passed 300 lines.)
 */
import { connect, type Socket } from "node:net";
import { BUFFER_LIMIT_BYTES } from "../upstreams";
import { newParser, type LlhttpParser } from "./llhttp";
import { closedError, failureOf, lengthMismatch } from "./upstream-failures";
import type { StreamSink } from "./upstream-exchange";
import type { Carried } from "./pooled-request";
import type { BasePool } from "./upstream-pool";

/**
 * Every upstream connection's reads land in this one buffer (node:net's `onread`), parsed there and then: without it
 * node:net allocates a read buffer for each read, sized for the largest read and trimmed after (session 60's on-CPU
 * profile: malloc and free of read buffers ~5 % of the gateway's CPU, both sides). Safe to share: a read is parsed
 * before the next one can arrive, and what outlives the read is copied (a body's bytes, `onBody`; headers are strings).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

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
    this.socket = connect({ port, host, noDelay: true, onread: { buffer: READ_BUFFER, callback: (n) => this.onRead(READ_BUFFER.subarray(0, n)) } });
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

  /** A read (a view of READ_BUFFER, valid until this returns); `guarded` written out: no closure made for every read (the lane's common path). */
  private onRead(d: Buffer): boolean {
    this.received = true;
    const x = this.exchange;
    try {
      this.failed(this.parser.execute(d));
    } catch (err) {
      this.broken(x, err);
    }
    return true; // (false would pause the socket: a streamed answer's client that is behind pauses it itself, `onBody`)
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
