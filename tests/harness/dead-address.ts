/**
 * A loopback address nothing listens on, for a test's "refused" case (a datastore gone, a broker
 * down, an endpoint that refuses). Before, tests took a port from listen(0) and closed it again:
 * the kernel's next listen(0) or outgoing connection anywhere on the machine could take it between
 * the close and the test's connection, and the case met a server, or a hang, instead of a refusal
 * (a flake on a loaded CI host).
 *
 * The port comes from freePort() (./proc.ts): reserved machine-wide among the harness's processes
 * (./port-reservations.ts) for this process's life, so no other test worker, run or service the
 * harness starts is given it, and never listened on here. It lies in 20000-29999, below the
 * kernel's ephemeral range (32768-60999), so no listen(0) and no outgoing connection takes it.
 * A connection to it is refused (ECONNREFUSED) for as long as the test file runs.
 */
import { freePort } from "./proc";

/** A loopback port nothing listens on while this process lives (see above). */
export function deadPort(): Promise<number> {
  return freePort();
}

/** `127.0.0.1:<port>` nothing listens on while this process lives: for a URL (`http://${a}`) or a broker list. */
export async function deadAddress(): Promise<string> {
  return `127.0.0.1:${await deadPort()}`;
}
