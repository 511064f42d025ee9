/**
 * The gateway's connections to each service: one budget per service (its host:port) that both of the
 * gateway's ways to it draw from, the Fastify path's (./service-pool.ts) and the fast lane's for GET and
 * HEAD (./fast-lane/upstream-pool.ts); its size is ../index.ts UPSTREAM_CONNECTIONS, the number each client's
 * share is a share of (./upstream-shares.ts). A slot is one connection held by a pool, open or about to be
 * (the Fastify path's: one undici Client, whose one socket it reopens in place); it is given back once that
 * connection is closed, so one gateway process never has more connections open to a service than the budget.
 * Until session 60 each pool held up to 128 of its own: 256 to a service sized (its PostgreSQL pool, its own
 * limits) for 128, and a share counted against 128 of them.
 *
 * Why one shared count, not a fixed part for each pool: the parts would be a guess at the traffic's mix (the
 * lane's GETs are most requests; the Fastify path carries every write), and a pool past its part would make
 * its requests wait while the other's connections stood idle; a client's share would then need a part of its
 * own in each pool (the two shares session 59 merged). With one count, either path may use all of it. Kept-
 * alive idle connections are what could starve the other path, so a pool that wants a slot when none is free
 * waits in this budget's queue (first come, first served, across both pools) and has another pool close one
 * of its idle connections for it (`reclaim`); a pool whose connection comes free while another pool waits
 * closes it for that pool rather than keep it (`next`): with both paths busy past the budget, a connection
 * passing from one to the other costs a new connection (a TCP handshake), the price of the bound. Full, a
 * request waits in its own pool's queue, as it did behind a full pool before; that wait is bounded by the
 * request's own timeout, as before.
 * The lane's common path (an idle connection reused) touches nothing here; `next` is read when a connection
 * comes free (one field read while nothing waits).
 */

/** A pool drawing on a ConnectionBudget. */
export interface ConnectionHolder {
  /** A slot it waited for (`take` said false): it opens a connection with it, or gives it back (`give`) when nothing waits in it any more. */
  granted(): void;
  /** Closes one of its idle connections (its slot given back once closed); false when it has none. */
  closeIdle(): boolean;
  /** Refuses every request of its own waiting for a connection (the budget's `closeQueues`), their places in its line withdrawn. */
  closeQueue(): void;
}

export class ConnectionBudget {
  /** Slots held: connections open or opening, and slots being handed to a waiting pool. */
  private held = 0;
  /** One entry per connection a pool waits for, in the order asked. */
  private readonly waiting: ConnectionHolder[] = [];
  private readonly holders = new Set<ConnectionHolder>();
  /** The gateway is closing (`closeQueues`): a slot is taken while one is free, never waited for. */
  private closing = false;

  constructor(readonly size: number) {}

  /**
   * The gateway is closing: every pool's requests waiting for a connection are refused now (their clients
   * answered 503 SHUTTING_DOWN: nothing was sent, another replica answers it sent again), and any later one
   * that finds no slot free at once. Until session 61 they waited: the close waited for them (their client
   * connections open) until a connection came free, or until the process was ended under them
   * (SHUTDOWN_TIMEOUT_MS); and a pool closed with requests in its queue failed the Fastify path's with a plain
   * Error (a 500) and dropped the lane's unanswered.
   */
  closeQueues(): void {
    this.closing = true;
    for (const h of [...this.holders]) h.closeQueue();
  }

  /** Whether `closeQueues` was called: a pool refuses a request rather than queue it. */
  get queuesClosed(): boolean {
    return this.closing;
  }

  /** `h` draws on this budget (`reclaim` asks it for idle connections). */
  join(h: ConnectionHolder): void {
    this.holders.add(h);
  }

  leave(h: ConnectionHolder): void {
    this.holders.delete(h);
    for (let i = this.waiting.indexOf(h); i >= 0; i = this.waiting.indexOf(h)) this.waiting.splice(i, 1);
  }

  /**
   * A slot for one new connection of `h`'s now (true), or `h` queued for the next one given back (false: then
   * `reclaim`, once `h` has queued what waits; once the queues are closed, false without queuing). (A slot
   * given back goes straight to a waiting pool: while any waits, none is free.)
   */
  take(h: ConnectionHolder): boolean {
    if (this.held < this.size) {
      this.held++;
      return true;
    }
    if (this.closing) return false;
    this.waiting.push(h);
    return false;
  }

  /** Has a pool (another, mostly) close one of its idle connections for `h`, which `take` queued (none idle: `h` waits for a connection to be closed or come free). */
  reclaim(h: ConnectionHolder): void {
    // `h` too: a request sent again on a new connection (the lane's resend) waits though `h` has idle ones.
    for (const holder of this.holders) if (holder.closeIdle()) return;
  }

  /**
   * `h` no longer waits for one of the connections it was queued for: a request of its own got one (its first
   * place in the line goes), or one went away (`latest`: its last place goes, the others keep theirs).
   */
  withdraw(h: ConnectionHolder, latest = false): void {
    const i = latest ? this.waiting.lastIndexOf(h) : this.waiting.indexOf(h);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** A connection closed (or a granted slot unused): its slot to the pool waiting longest, or free. */
  give(): void {
    const next = this.waiting.shift();
    if (next) next.granted();
    else this.held--;
  }

  /** The pool waiting longest for a slot (undefined: none waits): one whose connection comes free while another waits closes it for that one. */
  get next(): ConnectionHolder | undefined {
    return this.waiting[0];
  }

  /** Connections held by all pools (open, opening, or their slot being handed over). */
  get inUse(): number {
    return this.held;
  }
}

/** Each service's budget, by host:port: one instance for the gateway's two ways (./upstreams.ts UpstreamAnswerTimes carries it to the lane). */
export class ConnectionBudgets {
  private readonly budgets = new Map<string, ConnectionBudget>();
  private closing = false;

  constructor(readonly perService: number) {}

  of(host: string): ConnectionBudget {
    let b = this.budgets.get(host);
    if (!b) {
      this.budgets.set(host, (b = new ConnectionBudget(this.perService)));
      if (this.closing) b.closeQueues();
    }
    return b;
  }

  /** Every service's budget's `closeQueues` (the gateway's close: ./upstreams.ts), and any budget made after. */
  closeQueues(): void {
    this.closing = true;
    for (const b of this.budgets.values()) b.closeQueues();
  }
}
