/**
 * Characters an error message must not print as they are (stacks/config.ts, stacks/service-settings.ts):
 * C0 and C1 controls, DEL, bidirectional marks, overrides and isolates, line and paragraph separators,
 * the byte-order mark and lone surrogates. A terminal hides them or reorders the text around them
 * (U+202E shows "ACCESS_TOKEN_TTL_S" followed by nothing), so the user would not see what is wrong.
 */
export const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with each UNSHOWABLE character written as \uXXXX. */
export function escapeUnshowable(text: string): string {
  return text.replace(UNSHOWABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
