/**
 * Outbound connections to hosts a user chose (notification-service's webhook endpoints): only public
 * unicast addresses, checked on the address actually connected to (the `lookup` hook of the request),
 * so a name that resolved to a public address once and to 127.0.0.1 / 10.x / 169.254.169.254 at
 * connect time (DNS rebinding) reaches nothing inside.
 *
 * Names are resolved with c-ares (`dns.Resolver`: A and AAAA queries on the event loop's own sockets,
 * with a time-out and a number of tries), never with `dns.lookup`. `dns.lookup` is getaddrinfo on
 * libuv's thread pool (4 threads by default), and a lookup keeps its thread until the system resolver
 * gives up, long after the request that asked for it was aborted: a user's endpoint whose name server
 * never answers pinned a thread per delivery, and four of them held every other job of that pool in
 * the service (file reads, crypto, and the `dns.lookup` of its own PostgreSQL, Kafka and Redis
 * connections) for as long as the user kept sending. The hosts file is not read either: a user's
 * endpoint is a public name, and the container's own entries (localhost, its hostname) are inside.
 */
import { Resolver } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

/** True when an address is a public unicast one (IPv4, or IPv6 outside every special-purpose block). */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let ip = ipaddr.parse(address);
  if (ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  // The deprecated IPv4-compatible block (::a.b.c.d, which URL writes ::7f00:1) is "unicast" to ipaddr.js.
  if (ip.kind() === "ipv6" && (ip as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) return false;
  return ip.range() === "unicast";
}

export interface PublicLookupOptions {
  /** Name servers (`ip` or `ip:port`); the system's (/etc/resolv.conf) when absent. */
  servers?: readonly string[];
  /** How long the whole resolution may take (the caller's request has its own clock too). */
  timeoutMs: number;
}

/** The error a refused address is reported with (`code` EBLOCKED: a retry cannot help). */
export class BlockedAddressError extends Error {
  readonly code = "EBLOCKED";
  constructor(hostname: string) {
    super(`${hostname} resolves to a non-public address`);
  }
}

type Resolved = { address: string; family: 4 | 6 };

/**
 * A `lookup` for http(s).request / net.connect that resolves a name with c-ares and refuses it when any
 * of its addresses is not public (all of them, so Happy Eyeballs' fallback cannot reach one either).
 * Throws at creation on a malformed server list (a configuration error, reported at start).
 */
export function publicOnlyLookup(o: PublicLookupOptions): LookupFunction {
  // c-ares doubles a try's time-out on the next round: two tries of a quarter take three quarters.
  const resolver = new Resolver({ timeout: Math.max(50, Math.floor(o.timeoutMs / 4)), tries: 2 });
  if (o.servers?.length) resolver.setServers([...o.servers]);
  const query = (hostname: string, family: 4 | 6): Promise<Resolved[]> =>
    (family === 4 ? resolver.resolve4(hostname) : resolver.resolve6(hostname)).then((list) => list.map((address) => ({ address, family })));
  return (hostname, options, callback) => {
    const family = options.family === 4 || options.family === "IPv4" ? 4 : options.family === 6 || options.family === "IPv6" ? 6 : 0;
    const families: (4 | 6)[] = family === 0 ? [4, 6] : [family];
    void Promise.allSettled(families.map((f) => query(hostname, f))).then((results) => {
      const list = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
      if (!list.length) {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        const err: NodeJS.ErrnoException = failed?.reason instanceof Error ? failed.reason : Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" });
        return callback(err, "", 0);
      }
      if (list.some((a) => !isPublicAddress(a.address))) return callback(new BlockedAddressError(hostname), "", 0);
      if (options.all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}
