/**
 * Each client's share of the gateway's connections to a service (the Fastify path's pool,
 * ./upstreams.ts: `connections` a service, every client's). A client (a user, or the address of a
 * request without one) past its share of requests under way to one service may send more only while
 * `share` connections stay free for the others; past that it is answered 429 TOO_MANY_IN_FLIGHT at once
 * (nothing sent upstream: the same request may be sent again). Without it one user's 130 writes waiting
 * for their turn at a service (its lock held by a slow transaction elsewhere) held all 128 connections,
 * and another user's write to that service got no answer until the crowd ended or PROXY_TIMEOUT_MS cut
 * it (red team, session 57). A client alone may still use three quarters of them (benches, batch jobs);
 * clients within their share are never refused here (many of them filling the pool wait in it as before).
 * Counted from the request sent to its answer's head; in-process, as the pool is.
 */
import { HttpError } from "../../kit";

export class UpstreamShares {
  /** Per service and client, its requests under way (only those with one or more). */
  private readonly clients = new Map<string, number>();
  /** Per service, every client's requests under way. */
  private readonly services = new Map<string, number>();
  /** A client's requests under way to one service that are never refused: a quarter of the connections. */
  readonly share: number;

  constructor(private readonly connections: number) {
    this.share = Math.max(1, Math.floor(connections / 4));
  }

  /** Runs `send` counted as one of `client`'s requests to `service`, or throws the 429 when the rule above refuses it. */
  async run<T>(service: string, client: string, send: () => Promise<T>): Promise<T> {
    const key = `${service}\u0000${client}`;
    const mine = this.clients.get(key) ?? 0;
    const all = this.services.get(service) ?? 0;
    if (mine >= this.share && all + 1 > this.connections - this.share) {
      throw new HttpError(
        429,
        "TOO_MANY_IN_FLIGHT",
        `${mine} of this client's requests to this API are under way and the connections left are kept for other clients; nothing was sent, retry once one has answered`,
        undefined,
        { "retry-after": "1" },
      );
    }
    this.clients.set(key, mine + 1);
    this.services.set(service, all + 1);
    try {
      return await send();
    } finally {
      const left = this.clients.get(key)! - 1;
      if (left === 0) this.clients.delete(key);
      else this.clients.set(key, left);
      this.services.set(service, this.services.get(service)! - 1);
    }
  }

  /** Requests under way to `service` (all clients'). */
  inFlight(service: string): number {
    return this.services.get(service) ?? 0;
  }
}
