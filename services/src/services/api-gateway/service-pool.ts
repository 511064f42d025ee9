/**
 * The Fastify path's connections to one service (./upstreams.ts): undici Clients, one kept-alive connection
 * each (pipelining 1), as many as the service's budget lets it hold (./upstream-budget.ts: shared with the
 * fast lane's pool), and its own queue of the requests waiting for one.
 *
 * Not undici's Pool (until session 60): its connection count is its own, and it cannot lend an idle
 * connection to the lane; and a request queued in it stays queued when its client goes away (undici drops an
 * aborted request only when it reaches a connection, and aborting it there closes that connection), so a
 * burst of abandoned requests delayed the live ones behind it. Here a request leaves the queue the moment its
 * client is gone (`acquire`'s cancel), and a connection goes to a live request only.
 */
import { Client } from "undici";
import type { ConnectionBudget, ConnectionHolder } from "./upstream-budget";

/** A request waiting for a connection. */
interface Waiting {
  start(client: Client): void;
  /** No connection will come: the pool was closed (the gateway's own close; its requests are over by then). */
  fail(err: Error): void;
}

export class ServicePool implements ConnectionHolder {
  /** Clients without a request (their connection kept alive, or closed by the upstream and reopened on the next request). */
  private readonly idle: Client[] = [];
  /** Requests waiting for a connection, in order (a Set: one leaves from anywhere when its client goes away). */
  private readonly waiting = new Set<Waiting>();
  private readonly clients = new Set<Client>();
  private closed = false;

  constructor(
    private readonly origin: string,
    private readonly budget: ConnectionBudget,
    private readonly keepAliveTimeoutMs: number,
  ) {
    budget.join(this);
  }

  /**
   * Runs `start` with a connection of its own, now or once one is free (`fail` if the pool is closed first);
   * the request ends with `release` (its answer's end, or its failure). Returns the way to drop it from the
   * queue while it waits (its client gone): undefined when started at once.
   */
  acquire(start: (client: Client) => void, fail: (err: Error) => void): (() => void) | undefined {
    if (this.closed) return void fail(this.closedError());
    const c = this.idle.pop();
    if (c) return void start(c);
    if (this.budget.take(this)) return void start(this.newClient());
    const w: Waiting = { start, fail };
    this.waiting.add(w);
    this.budget.reclaim(this);
    return () => {
      // Its last place in the budget's line goes (the pool's other waiting requests keep theirs).
      if (this.waiting.delete(w)) this.budget.withdraw(this, true);
    };
  }

  /** The request on `client` ended: the client to the pool waiting longest (the lane's: closed for it), or this pool's next request, or idle. */
  release(client: Client): void {
    if (!this.clients.has(client)) return;
    const first = this.budget.next;
    if (this.closed || (first !== undefined && first !== this)) return void this.drop(client);
    const w = this.nextWaiting();
    if (w) {
      this.budget.withdraw(this);
      return w.start(client);
    }
    this.idle.push(client);
  }

  granted(): void {
    const w = this.nextWaiting();
    if (!w || this.closed) return this.budget.give();
    w.start(this.newClient());
  }

  closeIdle(): boolean {
    const c = this.idle.shift();
    if (!c) return false;
    void this.drop(c);
    return true;
  }

  /** Connections held (open, or to be reopened by their client on its next request). */
  get size(): number {
    return this.clients.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.budget.leave(this);
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const w of waiting) w.fail(this.closedError());
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((c) => this.drop(c)));
  }

  private closedError(): Error {
    return new Error(`the gateway's connections to ${this.origin} are closed`);
  }

  private nextWaiting(): Waiting | undefined {
    for (const w of this.waiting) {
      this.waiting.delete(w);
      return w;
    }
    return undefined;
  }

  private newClient(): Client {
    const c = new Client(this.origin, { pipelining: 1, keepAliveTimeout: this.keepAliveTimeoutMs });
    this.clients.add(c);
    return c;
  }

  /** Closes `client`; its slot is given back once its socket is closed (the service sees it gone first). */
  private drop(client: Client): Promise<void> {
    this.clients.delete(client);
    return client.destroy().then(
      () => this.budget.give(),
      () => this.budget.give(),
    );
  }
}
