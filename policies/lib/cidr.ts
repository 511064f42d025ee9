/** Address ranges of CIDR blocks (pure): how much of an address family a set of blocks covers together. */
import { isIPv4, isIPv6 } from "node:net";

export interface AddressRange { family: "ipv4" | "ipv6"; start: bigint; end: bigint }

function ipv4Value(ip: string): bigint {
    return ip.split(".").reduce((v, octet) => (v << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6Value(ip: string): bigint {
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
    const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
    const text = tail ? ip.slice(0, -tail[1].length) + ((v) => `${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`)(ipv4Value(tail[1])) : ip;
    const [head, rest] = text.split("::");
    const groups = (s: string | undefined) => (s ? s.split(":") : []);
    const all = rest === undefined ? groups(head) : [...groups(head), ...Array(8 - groups(head).length - groups(rest).length).fill("0"), ...groups(rest)];
    return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The addresses `address/prefix` covers, or undefined when the text is no CIDR. */
export function cidrRange(cidr: string): AddressRange | undefined {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr.trim());
    if (!m) return undefined;
    const family = isIPv4(m[1]) ? "ipv4" : isIPv6(m[1]) ? "ipv6" : undefined;
    const bits = family === "ipv4" ? 32 : 128;
    const prefix = Number(m[2]);
    if (family === undefined || prefix > bits) return undefined;
    const size = 1n << BigInt(bits - prefix);
    const start = ((family === "ipv4" ? ipv4Value(m[1]) : ipv6Value(m[1])) / size) * size;
    return { family, start, end: start + size - 1n };
}

/** How many addresses of `family` the blocks cover together (overlaps counted once). */
export function coveredAddresses(cidrs: readonly string[], family: "ipv4" | "ipv6"): bigint {
    const ranges = cidrs.map(cidrRange).filter((r): r is AddressRange => r?.family === family).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
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
