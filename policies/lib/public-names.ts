/**
 * Which DNS names and addresses are private: no public resolver answers for them, no public CA issues
 * for them, so a certificate from a private CA (cert-manager's `selfSigned` or `ca`, AWS PCA, Google CAS,
 * step-ca) is a fair choice there and nowhere else. Session 44.
 */
import { isIP } from "node:net";

/**
 * Suffixes no public resolver answers for: the cluster's (`svc`, `cluster.local`), the special-use names
 * of RFC 6761 (`test`, `example`, `invalid`, `localhost`), mDNS's `local` (RFC 6762), `home.arpa`
 * (RFC 8375) and `internal`, which ICANN reserved for private use in 2024.
 */
export const PRIVATE_SUFFIXES: readonly string[] = ["svc", "cluster.local", "local", "test", "example", "invalid", "localhost", "home.arpa", "internal"];

/** Whether `name` is `suffix` or a name under it (both compared without case and trailing dot). */
export function isUnder(name: string, suffix: string): boolean {
    const n = name.trim().toLowerCase().replace(/\.$/, "");
    const s = suffix.trim().toLowerCase().replace(/^\*?\./, "").replace(/\.$/, "");
    return s !== "" && (n === s || n.endsWith(`.${s}`));
}

/** IPv4 ranges that are not routed on the internet (RFC 1918, loopback, link-local, CGNAT). */
function isPrivateV4(ip: string): boolean {
    const [a, b] = ip.split(".").map(Number);
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
}

/**
 * Whether a certificate name is private: a single label, a name under a private suffix or one of
 * `extraSuffixes` (the operator's own internal zones), or an address outside the internet's.
 * A wildcard (`*.corp.internal`) is judged by the zone it covers.
 */
export function isPrivateName(host: string, extraSuffixes: readonly string[] = []): boolean {
    const name = host.trim().toLowerCase().replace(/^\*\./, "").replace(/\.$/, "");
    const bare = name.replace(/^\[|\]$/g, "");
    if (isIP(bare) === 4) return isPrivateV4(bare);
    if (isIP(bare) === 6) return bare === "::1" || /^f[cd]/.test(bare) || /^fe[89ab]/.test(bare);
    if (!name.includes(".")) return true;
    return [...PRIVATE_SUFFIXES, ...extraSuffixes].some((s) => isUnder(name, s));
}
