import { describe, expect, it } from "vitest";
import { describePauses, parseGcPauses } from "../../bench/lib/broker-gc";

// Lines as Java 17's unified logging writes them with `-Xlog:gc:file=...:time` (checked against a real JVM).
const LOG = [
  "[2026-12-02T18:12:15.114+0000] Using G1",
  "[2026-12-02T18:12:15.934+0000] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 6M->3M(64M) 8.316ms",
  "[2026-12-02T18:12:16.081+0000] GC(1) Pause Young (Concurrent Start) (G1 Evacuation Pause) 254M->171M(292M) 11.363ms",
  "[2026-12-02T18:12:16.100+0000] GC(2) Concurrent Mark Cycle",
  "[2026-12-02T19:12:16.120+0100] GC(2) Pause Remark 173M->173M(294M) 11.613ms",
  "[2026-12-02T18:12:16.140+0000] GC(2) Pause Cleanup 173M->173M(294M) 0.091ms",
  "[2026-12-02T18:12:16.900+0000] GC(2) Concurrent Mark Cycle 780.112ms",
].join("\n");

describe("the bench's broker GC pauses", () => {
  it("reads the stop-the-world pauses of a unified GC log, with their end time, and none of the concurrent phases", () => {
    const pauses = parseGcPauses(LOG);
    expect(pauses.map((p) => [p.kind, p.ms])).toEqual([["Pause Young", 8.316], ["Pause Young", 11.363], ["Pause Remark", 11.613], ["Pause Cleanup", 0.091]]);
    expect(pauses[2].at).toBe(Date.parse("2026-12-02T18:12:16.120Z")); // the offset is honoured
    expect(describePauses(pauses)).toBe("4 pause(s), 31.4 ms in all, the longest 11.6 ms");
    expect(describePauses([])).toBe("0 pause(s), 0.0 ms in all, the longest 0.0 ms");
  });
});
