/**
 * Address ranges of CIDR blocks (pure), read as the API server reads a NetworkPolicy's `ipBlock`: how
 * much of an address family a set of blocks covers together, and whether a block minus its `except`
 * list overlaps a range.
 *
 * Session 50: the API server parses with the legacy ("sloppy") parser, which takes an IPv4 octet with
 * leading zeros as decimal (`010.244.0.0/16` is 10.244.0.0/16), and an IPv4-mapped IPv6 block
 * (`::ffff:10.244.0.0/112`) holds the IPv4 addresses it maps: node's `isIPv4` refuses the first, and
 * the second was counted as IPv6 only, so either spelling passed every ipBlock check.
 */
import { isIPv6 } from "node:net";
import { ipv6ProxyScope, nonProxyIPv4, TRUSTED_PROXY_MIN_PREFIX, widerThanEdgeProxy } from "../../catalog/addresses";

export interface AddressRange { family: "ipv4" | "ipv6"; start: bigint; end: bigint }

/** ::ffff:0:0/96, where IPv4 addresses sit on the IPv6 line. */
const MAPPED = 0xffffn << 32n;
const IPV4_SPACE = 1n << 32n;

/** An IPv4 address as the API server's parser reads it (four decimal octets, any leading zeros), or undefined. */
function ipv4Value(ip: string): bigint | undefined {
    const octets = ip.split(".");
    if (octets.length !== 4 || !octets.every((o) => /^\d+$/.test(o) && Number(o) <= 255)) return undefined;
    return octets.reduce((v, octet) => (v << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6Value(ip: string): bigint | undefined {
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
    const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
    const tailValue = tail ? ipv4Value(tail[1]) : undefined;
    if (tail && tailValue === undefined) return undefined;
    const text = tail ? ip.slice(0, -tail[1].length) + `${(tailValue! >> 16n).toString(16)}:${(tailValue! & 0xffffn).toString(16)}` : ip;
    if (!isIPv6(text)) return undefined;
    const [head, rest] = text.split("::");
    const groups = (s: string | undefined) => (s ? s.split(":") : []);
    const all = rest === undefined ? groups(head) : [...groups(head), ...Array(8 - groups(head).length - groups(rest).length).fill("0"), ...groups(rest)];
    return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * The addresses `address/prefix` covers (a bare address when `bare`: /32 or /128), or undefined when
 * the text is none. An IPv4-mapped IPv6 block of /96 or narrower is the IPv4 block it maps.
 */
export function cidrRange(cidr: string, bare = false): AddressRange | undefined {
    const m = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(cidr.trim());
    if (!m || (m[2] === undefined && !bare)) return undefined;
    const v4 = m[1].includes(":") ? undefined : ipv4Value(m[1]);
    const value = v4 ?? (m[1].includes(":") ? ipv6Value(m[1]) : undefined);
    if (value === undefined) return undefined;
    const bits = v4 !== undefined ? 32 : 128;
    const prefix = m[2] === undefined ? bits : Number(m[2]);
    if (prefix > bits) return undefined;
    const size = 1n << BigInt(bits - prefix);
    const start = (value / size) * size;
    if (v4 === undefined && prefix >= 96 && start >= MAPPED && start < MAPPED + IPV4_SPACE) {
        return { family: "ipv4", start: start - MAPPED, end: start - MAPPED + size - 1n };
    }
    return { family: v4 !== undefined ? "ipv4" : "ipv6", start, end: start + size - 1n };
}

/**
 * Session 50b: every range a block covers, for the checks that judge ipBlocks. An IPv6 block wider than
 * /96 holding ::ffff:0:0/96 however it is written (`::/80`, `::/64`, `0:0:0:0:0:ffff::/96` is the /96 itself)
 * covers its IPv6 addresses and every IPv4 address (a CNI may match a mapped address against it): both
 * ranges. A mapped /96 or narrower is IPv4 only (`cidrRange`). Empty when the text is no CIDR.
 */
export function cidrRanges(cidr: string, bare = false): AddressRange[] {
    const r = cidrRange(cidr, bare);
    if (r === undefined) return [];
    return r.family === "ipv6" && r.start <= MAPPED && MAPPED + IPV4_SPACE - 1n <= r.end ? [r, { family: "ipv4", start: 0n, end: IPV4_SPACE - 1n }] : [r];
}

/** How many addresses of `family` the blocks cover together (overlaps counted once). */
export function coveredAddresses(cidrs: readonly string[], family: "ipv4" | "ipv6"): bigint {
    const ranges = cidrs.flatMap((c) => cidrRanges(c)).filter((r) => r.family === family)
        .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let total = 0n;
    let current: AddressRange | undefined;
    for (const r of ranges) {
        if (current && r.start <= current.end + 1n) {
            if (r.end > current.end) current.end = r.end;
            continue;
        }
        if (current) total += current.end - current.start + 1n;
        current = { ...r };
    }
    return current ? total + current.end - current.start + 1n : total;
}

/**
 * A bare address in the spelling node's parsers take, as the API server reads it: an IPv4 one (leading
 * zeros dropped: `0100.100.100.200` is 100.100.100.200) dotted, an IPv6 one as written; undefined when none.
 */
export function canonicalAddress(text: string): string | undefined {
    const r = text.includes("/") ? undefined : cidrRange(text, true);
    if (r === undefined) return undefined;
    if (r.family === "ipv6") return text.trim();
    return [24n, 16n, 8n, 0n].map((shift) => ((r.start >> shift) & 255n).toString()).join(".");
}

/**
 * An ipBlock's `cidr` wider than an IPv4 /8 or an IPv6 /16 (IPv4 in either spelling; session 50b: an IPv6 block
 * holding ::ffff:0:0/96, every IPv4 address): the address space in
 * halves or quarters. False when it is no CIDR (the API server refuses it).
 */
export function isWideBlock(cidr: string): boolean {
    return cidrRanges(cidr).some((r) => r.end - r.start + 1n > (r.family === "ipv4" ? 1n << 24n : 1n << 112n));
}

/**
 * Whether `cidr` minus the blocks of `except` holds any address of `range` (of its family, IPv4 in
 * either spelling): the part of the block inside the range is checked against the union of `except`.
 */
export function overlapsBeyond(cidr: string, except: readonly string[], range: string): boolean {
    const holes = except.flatMap((e) => cidrRanges(e));
    return cidrRanges(cidr).some((a) => cidrRanges(range).some((b) => a.family === b.family && rangeBeyond(a, b, holes.filter((h) => h.family === a.family))));
}

/** Whether `a` holds an address of `b` outside every hole (all of one family). */
function rangeBeyond(a: AddressRange, b: AddressRange, holes: AddressRange[]): boolean {
    let from = a.start > b.start ? a.start : b.start;
    const to = a.end < b.end ? a.end : b.end;
    if (from > to) return false;
    for (const h of [...holes].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0))) {
        if (h.start > from) return true;
        if (h.end >= from) from = h.end + 1n;
        if (from > to) return false;
    }
    return true;
}

/**
 * Session 51b: why a range trusted to tell the client's address (a trusted-proxy entry, ingress-nginx's
 * proxy-real-ip-cidr, Traefik's trustedIPs) is no edge proxy's, or undefined when it is one: wider than the
 * proxy's (catalog/addresses.ts TRUSTED_PROXY_MIN_PREFIX), outside the private, CGNAT and loopback ranges, or no range.
 */
export function untrustedProxyRange(entry: string): string | undefined {
    const r = cidrRange(entry, true);
    if (r === undefined) return "no address range";
    const bits = r.family === "ipv4" ? 32 : 128;
    const prefix = bits - (r.end - r.start + 1n).toString(2).length + 1;
    if (widerThanEdgeProxy(r.family === "ipv4" ? 4 : 6, prefix)) return `wider than /${r.family === "ipv4" ? TRUSTED_PROXY_MIN_PREFIX.v4 : TRUSTED_PROXY_MIN_PREFIX.v6}`;
    if (r.family === "ipv4") return nonProxyIPv4([24n, 16n, 8n, 0n].map((s) => ((r.start >> s) & 255n).toString()).join("."));
    return ipv6ProxyScope(entry.split("/")[0].trim()) === "local" ? undefined : "outside unique local, link-local and loopback";
}
