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
 *
 * The budget's protocol (idle connections, the queue, a connection freed for the pool waiting longer) is
 * ./budgeted-pool.ts's, the lane's pool's too; here is what is undici's: a Client opened, given, destroyed.
 */
import { Client } from "undici";
import { BudgetedPool, type PoolMembers } from "./budgeted-pool";
import type { ConnectionBudget } from "./upstream-budget";
import { notForwarded } from "./upstream-errors";

/** A request waiting for a connection. */
interface Waiting {
  start(client: Client): void;
  /** No connection will come: the gateway is closing (its 503 SHUTTING_DOWN: ./upstream-errors.ts notForwarded). */
  fail(err: Error): void;
}

export class ServicePool implements PoolMembers<Client, Waiting> {
  private readonly slots: BudgetedPool<Client, Waiting>;

  constructor(
    private readonly origin: string,
    budget: ConnectionBudget,
    private readonly keepAliveTimeoutMs: number,
  ) {
    this.slots = new BudgetedPool(budget, this);
  }

  /**
   * Runs `start` with a connection of its own, now or once one is free (`fail` if the gateway closes first);
   * the request ends with `release` (its answer's end, or its failure). Returns the way to drop it from the
   * queue while it waits (its client gone): undefined when started (or failed) at once.
   */
  acquire(start: (client: Client) => void, fail: (err: Error) => void): (() => void) | undefined {
    const c = this.slots.now();
    if (c) return void start(c);
    const w: Waiting = { start, fail };
    if (!this.slots.wait(w)) return undefined;
    // Its last place in the budget's line goes (the pool's other waiting requests keep theirs).
    return () => this.slots.leaveQueue(w);
  }

  /** The request on `client` ended: the client to the pool waiting longest (the lane's: closed for it), or this pool's next request, or idle. */
  release(client: Client): void {
    if (this.slots.holds(client)) this.slots.release(client);
  }

  /** Connections held (open, or to be reopened by their client on its next request). */
  get size(): number {
    return this.slots.size;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.close().map((c) => this.destroyed(c)));
  }

  open(): Client {
    return new Client(this.origin, { pipelining: 1, keepAliveTimeout: this.keepAliveTimeoutMs });
  }

  hand(w: Waiting, client: Client): void {
    w.start(client);
  }

  refuse(w: Waiting): void {
    w.fail(notForwarded());
  }

  /** Closes `client`; its slot is given back once its socket is closed (the service sees it gone first). */
  retire(client: Client): void {
    void this.destroyed(client);
  }

  private destroyed(client: Client): Promise<void> {
    const forget = () => this.slots.forget(client);
    return client.destroy().then(forget, forget);
  }
}
