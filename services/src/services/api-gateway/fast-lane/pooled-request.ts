/**
 * One request the fast lane's upstream pool (./upstream-pool.ts) carries: on a connection, or waiting for
 * one, and sent once more on a new connection after a refused or closed one.
 */
import type { HttpError } from "../../../kit";
import type { UpstreamFailure } from "../upstreams";
import type { Exchange, PooledAnswer, StreamSink } from "./upstream-exchange";
import type { BasePool, UpstreamConnection } from "./upstream-pool";

/** One handle on a request sent: `abandon()` gives it up (the connection is closed, not reused). */
export interface Sent {
  abandon(): void;
}

/** What a connection carries (UpstreamConnection.send): the request and where its answer goes. */
export interface Carried {
  readonly head: Buffer;
  readonly head_only: boolean;
  readonly bodyTimeoutMs: number;
  onAnswer(a: PooledAnswer): void;
  onStream(a: PooledAnswer, more: StreamSink): void;
  onFailure(err: Error, failure: UpstreamFailure, received: boolean): void;
  broken(err: unknown): void;
}

/** A request on its way: on a connection, or waiting for one; sent once more on a new one after a refused or closed connection (see UpstreamPool.send). */
export class PooledRequest implements Carried, Sent {
  private current: UpstreamConnection | undefined;
  private retried = false;
  private abandoned = false;
  readonly head: Buffer;
  readonly head_only: boolean;
  readonly bodyTimeoutMs: number;

  constructor(
    private readonly pool: BasePool,
    private readonly x: Exchange,
  ) {
    this.head = x.head;
    this.head_only = x.head_only;
    this.bodyTimeoutMs = x.bodyTimeoutMs;
  }

  /** A connection for it (BasePool.acquire). */
  take(c: UpstreamConnection): void {
    if (this.abandoned) return this.pool.release(c);
    this.current = c;
    c.send(this);
  }

  onAnswer(a: PooledAnswer): void {
    this.x.onAnswer(a);
  }

  onStream(a: PooledAnswer, more: StreamSink): void {
    this.x.onStream(a, more);
  }

  onFailure(err: Error, failure: UpstreamFailure, received: boolean): void {
    const transient = failure === "refused" || failure === "closed";
    if (!this.retried && transient && !received && !this.abandoned) {
      this.retried = true;
      this.current = undefined;
      return this.pool.acquire(this, true);
    }
    this.x.onFailure(err, failure, received, transient && this.pool.answers.recent(this.pool.key));
  }

  broken(err: unknown): void {
    this.abandoned = true;
    this.x.broken(err);
  }

  /** No connection will come for it, nothing of it sent: the gateway is closing (BasePool.refuse). */
  refuse(e: HttpError): void {
    this.abandoned = true;
    this.x.notSent(e);
  }

  abandon(): void {
    this.abandoned = true;
    // Waiting for a connection: out of the pool's queue at once (a slot coming for it would open one for nobody).
    if (!this.current) return this.pool.leaveQueue(this);
    // Only while this request is the connection's (once answered, it serves others).
    if (this.current.exchange === this) this.current.abandon();
  }
}
