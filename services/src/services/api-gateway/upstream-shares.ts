/**
 * Each client's share of the gateway's connections to a service: one rule and one count for both of its
 * pools, the Fastify path's (./upstreams.ts, `run`) and the fast lane's for GET and HEAD
 * (./fast-lane/upstream-pool.ts, `enter` and `leave`), which draw on one budget of `connections` per
 * service (./upstream-budget.ts): one instance (./index.ts). Until session 59 each pool had an instance of
 * its own, and one client could hold its share of each (96 + 96); until session 60 each pool held
 * `connections` of its own, twice the number the shares were counted against.
 * A client (a user, or the address of a request without one) past its share of requests under way to one
 * service may send more only while `share` connections stay free for the others; past that it is
 * answered 429 TOO_MANY_IN_FLIGHT at once (nothing sent upstream: the same request may be sent again).
 * Both paths' requests are counted against the one budget of `connections` (a request under way holds
 * one of them): a client past its share is admitted only while all clients' requests on both paths leave
 * `share` of them free, for the others, whichever path their requests take.
 * Without it one user's 130 writes waiting for their turn at a service (its lock held by a slow
 * transaction elsewhere) held all 128 connections, and another user's write to that service got no
 * answer until the crowd ended or PROXY_TIMEOUT_MS cut it (red team, session 57); the lane's pool had
 * no share until session 58, so one user's slow GETs held every lane connection to a service the same way.
 * A client alone may still use three quarters of them (benches, batch jobs); clients within their share
 * are never refused here (many of them filling the pool wait in it as before).
 * Counted from the request sent to its answer's head, or a streamed answer's end, or its client gone
 * (both paths end the upstream request then: session 59); in-process, as the pools are.
 */
import type { Readable } from "node:stream";
import { HttpError } from "../../kit";

/** One service's requests under way: every client's, and each client's (only clients with one or more). */
interface UnderWay {
  all: number;
  readonly clients: Map<string, number>;
}

export class UpstreamShares {
  private readonly services = new Map<string, UnderWay>();
  /** A client's requests under way to one service that are never refused: a quarter of the connections. */
  readonly share: number;

  constructor(private readonly connections: number) {
    this.share = Math.max(1, Math.floor(connections / 4));
  }

  /**
   * Counts one of `client`'s requests to `service` as under way (true), or refuses it (false, nothing
   * counted; `refusal` is its answer). The lane's check on every request: two map reads and writes, and
   * no object made once the service was seen (its keys are strings the request already holds).
   */
  enter(service: string, client: string): boolean {
    let s = this.services.get(service);
    if (s === undefined) this.services.set(service, (s = { all: 0, clients: new Map() }));
    const mine = s.clients.get(client) ?? 0;
    if (mine >= this.share && s.all + 1 > this.connections - this.share) return false;
    s.clients.set(client, mine + 1);
    s.all++;
    return true;
  }

  /** One of `client`'s requests to `service` that `enter` counted has its answer's head (or none will come). */
  leave(service: string, client: string): void {
    const s = this.services.get(service)!;
    const left = s.clients.get(client)! - 1;
    if (left === 0) s.clients.delete(client);
    else s.clients.set(client, left);
    s.all--;
  }

  /** The 429 of a request `enter` refused. */
  refusal(service: string, client: string): HttpError {
    const mine = this.services.get(service)?.clients.get(client) ?? 0;
    return new HttpError(
      429,
      "TOO_MANY_IN_FLIGHT",
      `${mine} of this client's requests to this API are under way and the connections left are kept for other clients; nothing was sent, retry once one has answered`,
      undefined,
      { "retry-after": "1" },
    );
  }

  /**
   * Runs `send` counted as one of `client`'s requests to `service`, or throws the 429 when the rule above
   * refuses it. An answer streamed (its body a stream: ./upstreams.ts, past BUFFER_LIMIT_BYTES) holds its
   * connection until that stream closes (read to its end, failed, or destroyed when its client went away),
   * and its place as long (until session 58 given back at its head: one client's stalled downloads could
   * hold every connection).
   */
  async run<T extends { body: Buffer | Readable }>(service: string, client: string, send: () => Promise<T>): Promise<T> {
    if (!this.enter(service, client)) throw this.refusal(service, client);
    let answer: T;
    try {
      answer = await send();
    } catch (e) {
      this.leave(service, client);
      throw e;
    }
    const body = answer.body;
    if (Buffer.isBuffer(body) || body.closed) this.leave(service, client);
    else body.once("close", () => this.leave(service, client));
    return answer;
  }

  /** Requests under way to `service` (all clients'). */
  inFlight(service: string): number {
    return this.services.get(service)?.all ?? 0;
  }

  /** Clients with requests under way to `service` (one whose requests all answered is not kept). */
  clientsUnderWay(service: string): number {
    return this.services.get(service)?.clients.size ?? 0;
  }
}
