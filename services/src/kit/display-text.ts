/**
 * Text a person gave for people to read (a display name, an API key's name, the reason of an admin's
 * action written to an audit): printable, on one line, in the order it was typed, and, where it must
 * say something, with at least one visible character. Refused (a 400 naming the field):
 * - C0 controls and DEL (U+0000-U+001F, U+007F) and C1 controls (U+0080-U+009F: U+009B is an 8-bit
 *   CSI, which a terminal reading the logs or the audit takes for ESC [ and obeys);
 * - line and paragraph separators (U+2028, U+2029), which viewers break lines at (a forged audit line);
 * - bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): "\u202Egnp.exe"
 *   shows as "exe.png", text displayed in another order than stored ("Trojan Source").
 * Invisible characters (white space, zero-width spaces and joiners, direction marks, the BOM, the soft
 * hyphen, Hangul fillers) are kept inside text (a joiner builds an emoji, a mark orders Arabic) but do
 * not count as the visible one: a name of U+200B alone shows as nothing.
 */
import { Type } from "@sinclair/typebox";

/** Never in display text (a character class body, for patterns compiled with the `u` flag as ajv does). */
const FORBIDDEN = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
/** Allowed, but not a visible character. `\s` covers the spaces (U+00A0, U+2000-U+200A, U+3000, U+FEFF ...). */
const INVISIBLE = "\\s\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u2060-\\u2064\\u3164\\ufe00-\\ufe0f\\uffa0";

/** What a 400 says instead of "must match pattern" and the pattern's unreadable text, by pattern. */
const explained = new Map<string, string>();
const PRINTABLE_SAYS = "must be printable text on one line (no control, line separator or text direction override characters)";

/** Printable, one line, no direction overrides; `alsoRefused`: more characters refused (a class body, e.g. "|"), `shown` as the 400 names them. */
export function printableTextPattern(alsoRefused = "", shown = alsoRefused): string {
  const pattern = `^[^${FORBIDDEN}${alsoRefused}]*$`;
  explained.set(pattern, shown ? `${PRINTABLE_SAYS}, without ${shown}` : PRINTABLE_SAYS);
  return pattern;
}
export const PRINTABLE_TEXT_PATTERN = printableTextPattern();
/** PRINTABLE_TEXT_PATTERN with at least one visible character (one lookahead at the start: linear). */
export const VISIBLE_TEXT_PATTERN = `^(?=[\\s\\S]*[^${FORBIDDEN}${INVISIBLE}])[^${FORBIDDEN}]*$`;
explained.set(VISIBLE_TEXT_PATTERN, `${PRINTABLE_SAYS} with at least one visible character`);

/** The words of a 400 for a value refused by one of these patterns (kit errors.ts), or undefined. */
export const displayTextRefusal = (pattern: unknown): string | undefined => (typeof pattern === "string" ? explained.get(pattern) : undefined);

const visible = new RegExp(VISIBLE_TEXT_PATTERN, "u");
const printable = new RegExp(PRINTABLE_TEXT_PATTERN, "u");

/** Whether `s` is display text (`needsVisible`: at least one visible character). */
export const isDisplayText = (s: string, needsVisible = true): boolean => (needsVisible ? visible : printable).test(s);

/**
 * A TypeBox string of display text (ajv counts minLength / maxLength in code points: an emoji is one).
 * `visible: false` for machine-ish text that may be blank-looking but must stay printable (a version label).
 */
export function DisplayText(o: { minLength?: number; maxLength: number; visible?: boolean; description?: string }) {
  const { visible: needsVisible = true, ...rest } = o;
  return Type.String({ minLength: 1, ...rest, pattern: needsVisible ? VISIBLE_TEXT_PATTERN : PRINTABLE_TEXT_PATTERN });
}
