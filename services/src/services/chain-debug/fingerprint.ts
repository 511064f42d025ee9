/**
 * Error grouping: two failures are the same problem when they have the same exception type, the
 * same message once its variable parts are replaced by placeholders, and the same top stack frames
 * (function and file, without line numbers, so a redeploy that shifts lines keeps the group).
 */
import { createHash } from "node:crypto";
import { UUID_TEXT } from "../../kit/identity";

const RULES: Array<[RegExp, string]> = [
  // The kit's UUID pattern, unanchored and global: every UUID inside a message, whatever its case.
  [new RegExp(`\\b${UUID_TEXT}\\b`, "gi"), "<uuid>"],
  [/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?/g, "<time>"],
  // Bounded parts (a scheme of at most 32 characters, an address's local part of 64 and labels of
  // 63 and 253, RFC 5321's): unbounded, each start of a long run of letters and dots was scanned to its
  // end, quadratic in a message's length (2,000 characters took 7.7 ms; an OTLP batch carries thousands).
  [/[a-z][a-z0-9+.-]{0,31}:\/\/[^\s'"]+/gi, "<url>"],
  [/\b[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{1,253}\b/g, "<email>"],
  [/\b(0x)?[0-9a-f]{12,}\b/gi, "<hex>"],
  [/"[^"]*"|'[^']*'/g, "<str>"],
  [/\b\d+(\.\d+)?\b/g, "<n>"],
];

export function normalizeMessage(message: string): string {
  let out = message.slice(0, 2_000);
  for (const [re, rep] of RULES) out = out.replace(re, rep);
  return out.replace(/\s+/g, " ").trim();
}

/**
 * Longest stack line read as a frame. A V8 frame is a function name and a file path; a longer line is
 * text a stack carries (an error message's own lines), and the frame pattern's lazy groups take time
 * quadratic in a line's length: one exception event whose stack was "at " and 16,000 spaces held the
 * event loop for half a second, and an OTLP batch carries thousands.
 */
const MAX_FRAME_CHARS = 1_000;

/** The first `n` frames as "function (file)", Node's "at fn (path:line:col)" format; internals skipped. */
export function topFrames(stack: string, n = 3): string[] {
  const frames: string[] = [];
  for (const raw of stack.split("\n")) {
    // Trimmed first: the pattern's own leading and trailing \s* were a quadratic scan of a line's spaces.
    const line = raw.trim();
    if (line.length > MAX_FRAME_CHARS) continue;
    const m = /^at (?:(.+?) \()?(.+?)(?::\d+)?(?::\d+)?\)?$/.exec(line);
    if (!m) continue;
    const file = m[2];
    if (file.startsWith("node:") || file.includes("/node_modules/")) continue;
    const base = file.split(/[\\/]/).pop() ?? file;
    frames.push(`${m[1] ?? "<anonymous>"} (${base})`);
    if (frames.length >= n) break;
  }
  return frames;
}

export function fingerprintOf(type: string, message: string, stack: string): string {
  return createHash("sha256").update([type, normalizeMessage(message), ...topFrames(stack)].join("\n")).digest("hex").slice(0, 32);
}
