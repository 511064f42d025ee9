/**
 * The stand-in broker's garbage-collection pauses (Apache Kafka on a JVM; production runs Redpanda,
 * C++, which has none): the bench starts the broker with unified GC logging to a file
 * (`-Xlog:gc:file=...:time`, through KAFKA_OPTS, which kafka-run-class.sh adds to the java command)
 * and reads back the stop-the-world pauses of a time window. A young or remark pause stops the
 * broker and takes both cores' GC workers: every order crossing Kafka then waits for it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GcPause {
  /** When the pause ended (epoch ms, the JVM's log decoration). */
  at: number;
  ms: number;
  kind: string;
}

// [2026-12-02T18:05:01.123+0000] GC(12) Pause Young (Normal) (G1 Evacuation Pause) 254M->171M(292M) 11.363ms
const PAUSE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)([+-]\d\d)(\d\d)\] GC\(\d+\) (Pause [A-Za-z]+)[^\n]* (\d+(?:\.\d+)?)ms$/;

/** The pauses a unified GC log (`-Xlog:gc:...:time`) reports, in order. */
export function parseGcPauses(log: string): GcPause[] {
  const out: GcPause[] = [];
  for (const line of log.split("\n")) {
    const m = PAUSE.exec(line.trim());
    if (!m) continue;
    out.push({ at: Date.parse(`${m[1]}${m[2]}:${m[3]}`), ms: Number(m[5]), kind: m[4] });
  }
  return out;
}

/** A GC log file for the broker the bench starts: set its KAFKA_OPTS before starting it; `pauses` reads the window [from, to]. */
export function brokerGcLog() {
  const dir = mkdtempSync(join(tmpdir(), "bench-broker-gc-"));
  const file = join(dir, "gc.log");
  return {
    kafkaOpts: [process.env.KAFKA_OPTS, `-Xlog:gc:file=${file}:time`].filter(Boolean).join(" "),
    pauses(from: number, to: number): GcPause[] {
      let text = "";
      try { text = readFileSync(file, "utf8"); } catch { return []; }
      return parseGcPauses(text).filter((p) => p.at >= from && p.at <= to);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** "N pauses, X ms in all, the longest Y ms" of a window's pauses. */
export function describePauses(pauses: GcPause[]): string {
  const total = pauses.reduce((s, p) => s + p.ms, 0);
  const longest = pauses.reduce((m, p) => Math.max(m, p.ms), 0);
  return `${pauses.length} pause(s), ${total.toFixed(1)} ms in all, the longest ${longest.toFixed(1)} ms`;
}
