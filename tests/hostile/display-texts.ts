/** Display text the kit refuses (kit display-text.ts) and text it keeps as sent, for the hostile suites. */

/** Shown otherwise than stored, unreadable in a terminal or a log line, or invisible. */
export const HOSTILE_TEXT: Array<[string, string]> = [
  ["right-to-left override", "\u202egnp.exe"],
  ["left-to-right embedding", "a\u202ab"],
  ["first-strong isolate", "\u2068admin\u2069"],
  ["C1 CSI (U+009B)", "ok\u009b31m red"],
  ["C1 NEL (U+0085)", "ok\u0085forged line"],
  ["line separator", "ok\u2028forged: line"],
  ["paragraph separator", "ok\u2029x"],
  ["zero-width space only", "\u200b\u200b\u200b"],
  ["BOM only", "\ufeff\ufeff\ufeff"],
  ["spaces only", "   "],
  ["no-break spaces only", "\u00a0\u00a0\u00a0"],
  ["Hangul fillers only", "\u3164\u3164\u3164"],
  ["soft hyphens and joiners only", "\u00ad\u200d\u2060"],
  ["direction marks only", "\u200e\u200f\u200e"],
];
/** Text in other scripts, emoji sequences and direction marks inside text: kept as sent. */
export const FINE_TEXT = ["Zoë Ørsted", "山田 太郎", "\u200fمرحبا بالعالم", "👨‍👩‍👧 family", "a\u00a0b c", "🏳️‍🌈 flag"];
