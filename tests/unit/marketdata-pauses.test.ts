/**
 * trading/marketdata/source.ts sleep: the pause a subscription's loop takes on its one signal before
 * every bar (synthetic, replay) and between a bar's delivery attempts (deliverBar). A listener kept
 * per pause piled up on the signal: MaxListenersExceededWarning after 10 bars in the test workers,
 * and a leak in a data-bridge streaming for days.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { deliverBar, sleep } from "../../services/src/trading/marketdata/source";
import { SyntheticSource } from "../../services/src/trading/marketdata/synthetic";
import type { Bar } from "../../services/src/trading/types";

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

describe("marketdata pauses leave no listener on their signal", () => {
  it("a pause that runs its time out removes its abort listener; one cut short resolves at once", async () => {
    const ac = new AbortController();
    for (let i = 0; i < 20; i++) await sleep(1, ac.signal);
    expect(abortListeners(ac.signal)).toBe(0);

    const long = sleep(60_000, ac.signal);
    expect(abortListeners(ac.signal)).toBe(1);
    ac.abort();
    await long; // resolves on the abort, not after a minute (the test's own timeout would say so)
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it("a bar retried many times leaves none behind (deliverBar's back-off)", async () => {
    const ac = new AbortController();
    let attempts = 0;
    const handler = () => {
      if (++attempts <= 15) throw new Error("not yet");
    };
    await deliverBar(handler, {} as Bar, { signal: ac.signal, retryMinMs: 1, retryMaxMs: 1 });
    expect(attempts).toBe(16);
    expect(abortListeners(ac.signal)).toBe(0);
  });

  it("a synthetic subscription streams past 10 bars without Node's listener-leak warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const got: Bar[] = [];
      const sub = new SyntheticSource({ seed: 7, emitEveryMs: 1, liveStartIndex: 0 }).subscribe("BTCUSDT", "1m", (b) => void got.push(b));
      await vi.waitFor(() => expect(got.length).toBeGreaterThanOrEqual(25), { timeout: 30_000, interval: 10 });
      await sub.close();
      // The warning is emitted on the next tick after the listener that passes the limit.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });
});
