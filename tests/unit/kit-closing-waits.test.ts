/**
 * kit service.ts `closing`: the signal every request waiting on something outside the process
 * listens on while it waits (ai-orchestrator's leasesGone: a pause on it per disable in flight).
 * Eleven at once printed MaxListenersExceededWarning (tests/ai/strategy-disable-race.test.ts: ten
 * disables at once); they are many waits sharing one signal, each removing its listener, not a leak.
 */
import { getEventListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createService, defineService } from "../../services/src/kit";

const probe = defineService({
  name: "central-hub", // any catalog entry: its datastore is never reached
  config: {},
  register() {},
});

describe("kit: the closing signal", () => {
  it("holds many waits' listeners at once without Node's listener-leak warning; each goes when its wait ends", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
    try {
      const closing = svc.ctx.closing;
      const before = getEventListeners(closing, "abort").length; // the kit's own (afterGrace for the peers)
      const short = Array.from({ length: 30 }, () => sleep(1, undefined, { signal: closing }));
      const long = Array.from({ length: 30 }, () => sleep(60_000, undefined, { signal: closing }).catch((e: Error) => e.name));
      expect(getEventListeners(closing, "abort").length).toBe(before + 60);
      await Promise.all(short);
      expect(getEventListeners(closing, "abort").length).toBe(before + 30);
      await svc.close();
      // The close aborts the long waits at once (a minute would outlast the test's timeout).
      expect(await Promise.all(long)).toEqual(Array(30).fill("AbortError"));
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
      await svc.close();
    }
  });
});
