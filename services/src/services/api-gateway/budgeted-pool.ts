/**
 * One pool of connections to a service within its connection budget (./upstream-budget.ts), the protocol
 * both of the gateway's ways to it follow: the Fastify path's undici Clients (./service-pool.ts) and the
 * fast lane's node:net connections (./fast-lane/upstream-pool.ts). Until session 61 each wrote it out.
 * - A request takes an idle connection (the last one used: its socket the warmest), or a new one while the
 *   budget has a slot free (`now`); else it waits in this pool's queue (`wait`), the budget queuing one
 *   slot for it and having a pool close an idle connection for it (`reclaim`).
 * - A connection coming free goes to the pool that waits longest for a slot: another pool's, closed for it
 *   (its slot passes on once it is closed), else this pool's next request, else idle (`release`).
 * - A slot the budget grants opens a connection for this pool's next request, or goes back when nothing
 *   waits any more (`granted`); a request that gives up while it waits leaves the queue and its slot's place
 *   in the budget's line at once (`leaveQueue`).
 * - When the gateway closes, the requests still waiting are refused (`closeQueue`: the budget's
 *   closeQueues, a grace into the close; `close`, at its end): nothing was sent, another replica answers.
 *
 * Its shape, for the lane's cost per request: one concrete class, not a base class each path extends. Every
 * pool is this class, so each property load and call in its methods sees one hidden class (monomorphic), on
 * either path; with a subclass per path each of them would see two, the lane's common path (`now` popping an
 * idle connection, `release` pushing it back while nothing waits) included. Those two touch neither the
 * connection type nor a callback: no allocation, no closure. What differs between the two connection types
 * (open one, give one to a waiting request, close one, refuse a waiting request) is `PoolMembers`, one object
 * per pool (its owner), called only when something waits, is granted, or is closed.
 */
import type { ConnectionBudget, ConnectionHolder } from "./upstream-budget";

/** What a BudgetedPool of connections `C` for waiting requests `W` does with either (its owner: ServicePool, BasePool). */
export interface PoolMembers<C, W> {
  /** A new connection (its slot taken). */
  open(): C;
  /** Gives connection `c` to the waiting request `w`. */
  hand(w: W, c: C): void;
  /** Closes `c` (no request on it, or one given up): `forget(c)` once it is closed gives its slot back. */
  retire(c: C): void;
  /** No connection will come for `w`: the gateway is closing (nothing of it was sent). */
  refuse(w: W): void;
}

export class BudgetedPool<C, W> implements ConnectionHolder {
  /** Connections without a request, the last released on top. */
  private readonly idle: C[] = [];
  /** Connections held, their slots taken (open, opening, or being closed until `forget`). */
  private readonly all = new Set<C>();
  /** Requests waiting for a connection, in order (a Set: one leaves from anywhere when it gives up). */
  private readonly waiting = new Set<W>();
  /** `close`d: no connection is given any more, one coming free is closed. */
  private closed = false;

  constructor(
    private readonly budget: ConnectionBudget,
    private readonly members: PoolMembers<C, W>,
  ) {
    budget.join(this);
  }

  /**
   * A connection for a request now: an idle one (`fresh`: never: a resend wants a new connection), or a new
   * one while the budget has a slot free. Undefined: none (the budget has queued a slot for it, unless this
   * pool is closed or the budget's queues are): the caller then `wait`s with the request, at once.
   */
  now(fresh = false): C | undefined {
    if (this.closed) return undefined;
    const c = fresh ? undefined : this.idle.pop();
    if (c !== undefined) return c;
    if (!this.budget.take(this)) return undefined;
    const opened = this.members.open();
    this.all.add(opened);
    return opened;
  }

  /** `w` waits for a connection (`now` found none): true; or it is refused at once, the gateway closing: false. */
  wait(w: W): boolean {
    if (this.closed || this.budget.queuesClosed) {
      this.members.refuse(w);
      return false;
    }
    this.waiting.add(w);
    this.budget.reclaim(this);
    return true;
  }

  /**
   * `w` gave up while it waited (its client went away, or its time ran out): out of the queue, and its slot's
   * place in the budget's line with it (the pool's other waiting requests keep theirs). Left there, a slot that
   * came for it opened a connection for nobody, and the other path waited behind it for its turn.
   */
  leaveQueue(w: W): void {
    if (this.waiting.delete(w)) this.budget.withdraw(this, true);
  }

  /** The request on `c` ended and `c` can carry another: to the pool waiting longest (another's: closed for it), or this pool's next request, or idle. */
  release(c: C): void {
    const first = this.budget.next;
    if (this.closed || (first !== undefined && first !== this)) return this.members.retire(c);
    if (this.waiting.size === 0) return void this.idle.push(c);
    const w = this.nextWaiting();
    this.budget.withdraw(this);
    this.members.hand(w, c);
  }

  /** `c` is closed (retired, or by its peer, or failed): out of the pool, its slot to the pool waiting longest, or free. */
  forget(c: C): void {
    if (!this.all.delete(c)) return;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.budget.give();
  }

  granted(): void {
    if (this.closed || this.waiting.size === 0) return this.budget.give();
    const w = this.nextWaiting();
    const c = this.members.open();
    this.all.add(c);
    this.members.hand(w, c);
  }

  closeIdle(): boolean {
    const c = this.idle.shift();
    if (c === undefined) return false;
    this.members.retire(c);
    return true;
  }

  /** The gateway is closing (the budget's closeQueues): every request still waiting is refused; later ones are at once (`wait`). */
  closeQueue(): void {
    for (const w of [...this.waiting]) {
      this.leaveQueue(w);
      this.members.refuse(w);
    }
  }

  /** No more connections from this pool: its waiting requests refused, out of the budget; returns its idle connections, for the owner to close. */
  close(): C[] {
    this.closed = true;
    this.budget.leave(this);
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const w of waiting) this.members.refuse(w);
    return this.idle.splice(0);
  }

  /** Connections held (open, opening, or closing until `forget`). */
  get size(): number {
    return this.all.size;
  }

  /** The connections held, a copy (closing them changes the pool). */
  connections(): C[] {
    return [...this.all];
  }

  /** Whether `c` is one of this pool's connections (not yet forgotten). */
  holds(c: C): boolean {
    return this.all.has(c);
  }

  private nextWaiting(): W {
    const w = this.waiting.values().next().value as W;
    this.waiting.delete(w);
    return w;
  }
}
