/**
 * kit display-text.ts: what a display name, a key's name or an audit reason may hold, and that the
 * check stays linear on the longest hostile inputs (its pattern runs in ajv on every such field).
 */
import { describe, expect, it } from "vitest";
import { displayTextRefusal, isDisplayText, PRINTABLE_TEXT_PATTERN, printableTextPattern, VISIBLE_TEXT_PATTERN } from "../../services/src/kit/display-text";
import { cpuMs } from "../helpers/patience";

describe("display text", () => {
  it("refuses controls (C0, DEL, C1), line separators, direction overrides and isolates", () => {
    for (const s of ["a\u0000", "a\nb", "a\u001b[31m", "a\u007f", "a\u0085", "a\u009b31m", "a\u2028b", "a\u2029b", "\u202egnp.exe", "a\u202ab", "a\u202db", "\u2066x\u2069", "\u2068x"]) {
      expect(isDisplayText(s), JSON.stringify(s)).toBe(false);
      expect(isDisplayText(s, false), JSON.stringify(s)).toBe(false);
    }
  });

  it("needs a visible character where asked: invisible-only text is refused, kept inside text", () => {
    for (const s of ["", " ", "\u00a0", "\u200b", "\ufeff", "\u3164", "\u00ad", "\u200d", "\u200e\u200f", "\u2060", "\u3000", "\ufe0f", "\u115f\u1160"]) {
      expect(isDisplayText(s), JSON.stringify(s)).toBe(false);
      expect(isDisplayText(s, false), JSON.stringify(s)).toBe(true);
    }
    for (const s of ["Zoë", "山田 太郎", "\u200fمرحبا", "👨‍👩‍👧", "🏳️‍🌈", "a\u00a0b", "x"]) expect(isDisplayText(s), JSON.stringify(s)).toBe(true);
  });

  it("is linear on 100,000 characters that almost match", () => {
    const results: boolean[] = [];
    // CPU time, not the clock: waiting for a core on a loaded machine is not the pattern's (tests/helpers/patience.ts).
    const spent = cpuMs(() => {
      for (const s of [" ".repeat(100_000) + "\u0000", "\u200b".repeat(100_000), "a".repeat(100_000) + "\u202e"]) results.push(isDisplayText(s));
    });
    expect(results).toEqual([false, false, false]);
    expect(spent).toBeLessThan(500);
  });

  it("explains a refusal in words, per pattern (kit errors.ts)", () => {
    expect(displayTextRefusal(VISIBLE_TEXT_PATTERN)).toMatch(/with at least one visible character$/);
    expect(displayTextRefusal(PRINTABLE_TEXT_PATTERN)).toMatch(/^must be printable text on one line/);
    expect(displayTextRefusal(printableTextPattern("|", '"|"'))).toMatch(/, without "\|"$/);
    expect(displayTextRefusal("^[a-z]+$")).toBeUndefined();
  });
});
