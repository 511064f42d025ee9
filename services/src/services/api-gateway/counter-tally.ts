/**
 * Increments of a prom-client counter, kept in process and added to it when it is read (its `collect`,
 * which prom-client runs before every /metrics): an increment through prom-client builds and looks up a
 * string of its labels each time, which the gateway's fast lane paid two times a request (session 57's
 * profile of bench/gateway.ts). What /metrics shows is the same: the counts are in before it is written.
 * Keyed by a name (a service, an outcome) and an HTTP status or a small code, so a request's increment is
 * a map read of a string it already holds and an array slot.
 */
import type { Counter } from "prom-client";

export class CounterTally<L extends string> {
  private readonly counts = new Map<string, number[]>();

  /** `labels(name, code)`: the counter's labels of one slot (read when the counts are added). */
  constructor(private readonly labels: (name: string, code: number) => Partial<Record<L, string>>) {}

  /** One more of `name` and `code` (0-999). */
  add(name: string, code: number): void {
    let slots = this.counts.get(name);
    if (!slots) {
      slots = new Array<number>(1000).fill(0);
      this.counts.set(name, slots);
    }
    slots[code]++;
  }

  /** Adds what was counted since the last time to `counter` (its collect). */
  addTo(counter: Counter<L>): void {
    for (const [name, slots] of this.counts) {
      for (let code = 0; code < slots.length; code++) {
        const n = slots[code];
        if (n === 0) continue;
        slots[code] = 0;
        counter.inc(this.labels(name, code), n);
      }
    }
  }
}
