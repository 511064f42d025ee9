/**
 * A streamed answer of the lane (larger than ../upstreams.ts BUFFER_LIMIT_BYTES: ./upstream-pool.ts onStream),
 * from its head to its end: each chunk written as it comes (framed when the upstream's had no length), the
 * upstream paused while the client's socket is full. It holds its upstream connection, and its place in its
 * client's share (./exchange.ts giveBackPlace), until it ends: read to its end, failed, its client gone, or
 * its client taking none of it for CLIENT_SEND_TIMEOUT_MS (`sendStalled`: cut, as the Fastify path's stream;
 * until session 59 a client that stopped reading held both for as long as it kept its connection open).
 * One object per streamed answer (the platform's answers are small: not the common path).
 */
import { STALLED_CLIENT_LOG } from "../upstreams";
import { chunkOf } from "./answer";
import { brokenOnThrow } from "./faults";
import type { LaneConnection } from "./connections";
import type { LaneDeps } from "./deps";
import type { StreamSink } from "./upstream-exchange";

/** What a stream asks of its request (./exchange.ts LaneExchange). */
export interface StreamOwner {
  readonly service: string;
  readonly requestId: string;
  giveBackPlace(): void;
  completed(status: number): void;
  finish(): void;
  abandonUpstream(): void;
  /** A fault of the lane's own (./exchange.ts broken): logged, its client's connection closed. */
  broken(err: unknown): void;
}

export class LaneStream {
  /** Over: its end, failure, client gone or stalled (each ends it once). */
  private over = false;
  /** Armed while the client's socket is full (a write answered false), until its drain. */
  private stall: NodeJS.Timeout | undefined;
  private readonly onDrain = () => {
    clearTimeout(this.stall);
    this.stall = undefined;
    brokenOnThrow(this, () => this.more.resume?.());
  };

  constructor(
    private readonly x: StreamOwner,
    private readonly d: LaneDeps,
    private readonly conn: LaneConnection,
    private readonly status: number,
    /** Its chunks framed (the upstream's answer had no Content-Length). */
    private readonly chunked: boolean,
    private readonly more: StreamSink,
  ) {}

  /** The answer's head and its buffered first part written; each next chunk from `more`. */
  begin(head: Buffer, body: Buffer): void {
    const conn = this.conn;
    conn.write(head);
    conn.socket.on("drain", this.onDrain);
    this.more.write = (chunk, err) => this.streamed(chunk, err);
    conn.exchange = this; // (told when the client goes away: clientGone)
    this.written(conn.write(this.frame(body)));
  }

  /** The client went away mid-answer: the upstream's connection closed (it was left paused on the client's full socket). */
  clientGone(): void {
    if (this.over) return;
    this.end();
    this.x.abandonUpstream();
  }

  /** A fault out of an event or timer of its own: it ends, its exchange broken (a throw there would end the process). */
  broken(err: unknown): void {
    if (!this.over) this.end();
    this.x.broken(err);
  }

  /** The client took none of it for sendTimeoutMs (CLIENT_SEND_TIMEOUT_MS): cut, its upstream connection closed. */
  sendStalled(): void {
    if (this.over) return;
    this.end();
    this.x.abandonUpstream();
    this.d.log.warn({ requestId: this.x.requestId, upstream: this.x.service, sendTimeoutMs: this.d.sendTimeoutMs }, STALLED_CLIENT_LOG);
    this.x.completed(this.status);
    this.conn.destroy();
  }

  /** Its next chunk, its end (null) or its failure; false: the client's socket is full (the upstream paused until its drain). */
  private streamed(chunk: Buffer | null, err?: Error): boolean {
    if (this.over) return false;
    const conn = this.conn;
    if (chunk !== null && !err) return chunk.length === 0 || this.written(conn.write(this.frame(chunk)));
    this.end();
    if (err) {
      this.x.completed(this.status);
      conn.destroy(); // the answer cannot be finished: the client sees it cut, as on the Fastify path
      return false;
    }
    if (this.chunked) conn.write(LAST_CHUNK);
    this.x.completed(this.status);
    this.x.finish();
    return true;
  }

  /** A write's answer; false arms the bound on the client taking none of it (once, until the drain). */
  private written(taken: boolean): boolean {
    if (!taken && this.stall === undefined) this.stall = setTimeout(sendStalled, this.d.sendTimeoutMs, this);
    return taken;
  }

  private end(): void {
    this.over = true;
    this.x.giveBackPlace();
    this.conn.exchange = undefined;
    this.conn.socket.removeListener("drain", this.onDrain);
    clearTimeout(this.stall);
  }

  private frame(b: Buffer): Buffer {
    return this.chunked ? chunkOf(b) : b;
  }
}

const sendStalled = (s: LaneStream) => brokenOnThrow(s, () => s.sendStalled());
const LAST_CHUNK = Buffer.from("0\r\n\r\n");
