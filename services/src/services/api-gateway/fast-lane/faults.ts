/**
 * The fast lane's events and timers run outside any request handler: a throw out of one (a fault of the
 * lane's, never a client's input) would end the gateway's process and every client's requests with it.
 * Run through this, it ends only the request it concerns (its `broken`: logged, its client's connection closed).
 */
export function brokenOnThrow(owner: { broken(err: unknown): void }, run: () => void): void {
  try {
    run();
  } catch (err) {
    owner.broken(err);
  }
}
