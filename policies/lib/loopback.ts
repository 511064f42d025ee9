/**
 * Session 63: the one test of a loopback IP literal, for every address the Docker engine (Go) reads: a published
 * port's `ports[].ip` (no-public-exposure) and a log driver's address (docker-logs-on-host). Two hand-written checks
 * differed on `127.000.0.1`: Go's net.ParseIP refuses an IPv4 octet with a leading zero (since Go 1.17), as Node's
 * isIPv4 does, so that spelling is no address at all to the engine: a port published on it is published on every
 * interface of the host, and a log driver dialling it asks the resolver for a host of that name, wherever it points.
 */
import { isIPv4, isIPv6 } from "node:net";

/** An IP literal as Go's net.ParseIP reads it, in 127.0.0.0/8, or ::1 however spelt (`0:0:0:0:0:0:0:1`, `::0001`). */
export function isLoopbackIp(ip: string): boolean {
    if (isIPv4(ip)) return ip.startsWith("127.");
    return isIPv6(ip) && new URL(`http://[${ip}]/`).hostname === "[::1]";
}
