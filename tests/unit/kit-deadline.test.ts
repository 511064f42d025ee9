/**
 * kit deadline.ts: afterGrace, the graced closing signal every peer read in flight listens on (kit
 * peers.ts cutOnClose), and unlessAborted.
 */
import { describe, expect, it } from "vitest";
import { afterGrace, unlessAborted } from "../../services/src/kit/deadline";

describe("afterGrace (kit/deadline.ts)", () => {
  it("aborts graceMs after its signal, with the signal's reason", async () => {
    const closing = new AbortController();
    const graced = afterGrace(closing.signal, 20);
    closing.abort(new Error("closing"));
    expect(graced.aborted).toBe(false);
    await new Promise((resolve) => graced.addEventListener("abort", resolve, { once: true }));
    expect((graced.reason as Error).message).toBe("closing");
  });

  it("holds many calls' listeners at once without Node's listener-leak warning", async () => {
    // Every peer read in flight listens on the one graced signal: 21 at once printed MaxListenersExceededWarning.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const closing = new AbortController();
      const graced = afterGrace(closing.signal, 1);
      const calls = Array.from({ length: 50 }, () => unlessAborted(new Promise(() => undefined), graced, () => new Error("cut")));
      closing.abort();
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });
});
