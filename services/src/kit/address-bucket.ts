/**
 * The bucket a client address is counted in (rate limits, the per-address cap, failed API keys,
 * login lockouts): an IPv4 address is its own; an IPv6 address counts by its /64 network. A /64 is
 * what one subscriber, one host even, is handed (RFC 6177, SLAAC), and its 2^64 addresses are
 * free to pick: counted one by one, a client with an IPv6 connection had a fresh rate-limit bucket
 * and a fresh login lockout with every request. An IPv4-mapped address (`::ffff:a.b.c.d`, how a
 * dual-stack socket shows an IPv4 client) is that IPv4 address. Parsing is ipaddr.js's (every
 * spelling: zero-padded groups, `::`, a dotted tail, a zone id), as proxy-addr's is.
 *
 * A /64 is not all a client may hold: a site is handed a /56 or a /48 (RFC 6177), 256 or 65,536
 * such buckets. `siteBucketOf` names the /48 an IPv6 address lies in, which the gateway counts too,
 * at a higher limit (api-gateway/limits.ts `checkSite`).
 */
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

export function addressBucketOf(address: string): string {
  // Node decides what is an IPv6 address (ipaddr.js also reads IPv4's old "127.1" and hex forms, which no socket shows).
  if (isIP(address) !== 6 || !ipaddr.IPv6.isValid(address)) return address;
  const v6 = ipaddr.IPv6.parse(address);
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  return `${v6.parts.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The /48 an IPv6 client address lies in (its site's largest usual assignment); undefined for IPv4 and IPv4-mapped addresses. */
export function siteBucketOf(address: string): string | undefined {
  if (isIP(address) !== 6 || !ipaddr.IPv6.isValid(address)) return undefined;
  const v6 = ipaddr.IPv6.parse(address);
  if (v6.isIPv4MappedAddress()) return undefined;
  return `${v6.parts.slice(0, 3).map((g) => g.toString(16)).join(":")}::/48`;
}
