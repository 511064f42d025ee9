/**
 * The bucket a client address is counted in (rate limits, the per-address cap, failed API keys,
 * login lockouts): an IPv4 address is its own; an IPv6 address counts by its /64 network. A /64 is
 * what one subscriber, one host even, is handed (RFC 6177, SLAAC), and its 2^64 addresses are
 * free to pick: counted one by one, a client with an IPv6 connection had a fresh rate-limit bucket
 * and a fresh login lockout with every request. An IPv4-mapped address (`::ffff:a.b.c.d`, how a
 * dual-stack socket shows an IPv4 client) is that IPv4 address.
 */
import { isIP } from "node:net";

export function addressBucketOf(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address.split("%")[0]);
  if (!groups) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address Node accepted (`isIP` 6), zone id removed. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, dotted.index);
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
  }
  const [head, rest] = text.split("::");
  const parse = (part: string | undefined) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const before = parse(head);
  const after = [...parse(rest), ...tail];
  const zeros = 8 - before.length - after.length;
  if (rest === undefined ? zeros !== 0 : zeros < 0) return undefined;
  const groups = [...before, ...new Array<number>(Math.max(zeros, 0)).fill(0), ...after];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}
