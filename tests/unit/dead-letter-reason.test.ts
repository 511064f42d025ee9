/**
 * The reason a dead letter is stored with (trading/infra/deadLetters.ts reasonText): text PostgreSQL
 * accepts, bounded at 1000 UTF-16 units. A NUL is shown as "\0"; an unpaired surrogate, including one
 * left by the cut through a pair, becomes U+FFFD (the kit's storableText).
 */
import { describe, expect, it } from "vitest";
import { isUnstorableText } from "../../services/src/kit";
import { reasonText } from "../../services/src/trading/infra/deadLetters";

describe("dead-letter reason text", () => {
  it("shows a NUL as \\0 and replaces an unpaired surrogate", () => {
    expect(reasonText(new Error("bad\u0000id \ud800 end"))).toBe("Error: bad\\0id \ufffd end");
  });

  it("a cut at 1000 units through a pair leaves no half of it", () => {
    const text = reasonText(new Error(`${"x".repeat(998)}\u{1F600}tail`)); // "Error: " + 998 x: the pair starts at unit 1005, past the cut
    expect(text).toHaveLength(1000);
    const cutInPair = reasonText(new Error("x".repeat(992) + "\u{1F600}tail")); // "Error: " (7) + 992 = 999: the pair's high half is unit 1000
    expect(cutInPair).toHaveLength(1000);
    expect(cutInPair.endsWith("\ufffd")).toBe(true);
    expect(isUnstorableText(cutInPair)).toBe(false);
    expect(isUnstorableText(text)).toBe(false);
  });
});
