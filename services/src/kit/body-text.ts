/**
 * A JSON body's text (bodyTextIssue, called by the kit's JSON parser, ./request-guards.ts): UTF-8 (or
 * US-ASCII, its subset) only, decoded strictly. Moved here from ./request-framing.ts in session 64.
 *
 * The charset is read by jshttp's `content-type` (the Content-Type reader of Express and the rest of
 * jshttp: RFC 9110 §5.6.6 parameters, OWS around `=`, quoted strings with their quoted-pairs, the first
 * of a parameter sent twice), where the kit had a pattern of its own. Version 2 reads leniently and
 * never throws on a string (1.x threw a TypeError on any malformed header); what it takes that the
 * kit's reader refused is mapped to the kit's answers:
 * - a quoted string never closed (`charset="utf-8`, `profile="x; charset=latin1`): the library reads it
 *   to the end of the header and drops that parameter, and any after it, without a word; a 415 naming
 *   `content-type`, as the kit's reader answered `charset="utf-8` (it read an empty charset);
 * - a throw (none in 2.x; a later version's, were it to come back): the header is malformed, the same 415.
 */
import { isAscii, isUtf8 } from "node:buffer";
import { parse as parseContentType } from "content-type";
import { HttpError } from "./errors";

/**
 * A parameter name no Content-Type holds: Node reads a header's bytes as Latin-1, a character each
 * (U+0000-U+00FF); U+2020 has no case (the library lower-cases names). Put after the header, it is
 * read as a parameter unless a quoted string before it is still open: the library's own reading
 * tells whether one is closed, with no second grammar beside it to disagree.
 */
const LAST = "\u2020";

const MALFORMED = Symbol("malformed Content-Type");

/** The first charset a Content-Type declares, as sent (unquoted, its quoted-pairs read), undefined without one, MALFORMED when a quoted string is never closed. */
function charsetOf(contentType: string): string | undefined | typeof MALFORMED {
  let parameters: Record<string, string>;
  try {
    parameters = parseContentType(`${contentType};${LAST}=`).parameters;
  } catch {
    return MALFORMED;
  }
  return parameters[LAST] === undefined ? MALFORMED : parameters.charset;
}

/**
 * The names of US-ASCII, a subset of UTF-8 (its bytes are the same text in both): IANA's registered
 * name and aliases, and `ascii`, lower case. A body declared in one was refused 415 until session 63.
 * Looked up before UTF-8's labels: the WHATWG Encoding Standard makes `ascii` and `us-ascii` labels of
 * windows-1252, whose bytes above 0x7F are not UTF-8's.
 */
const ASCII_CHARSETS = new Set(["us-ascii", "ascii", "iso646-us", "iso-ir-6", "ansi_x3.4-1968", "ansi_x3.4-1986", "iso_646.irv:1991", "us", "ibm367", "cp367", "csascii"]);

/**
 * Whether a charset (lower case) names UTF-8: a label the WHATWG Encoding Standard resolves to UTF-8
 * (`utf-8`, `utf8`, `unicode-1-1-utf-8`, `unicode11utf8`, `unicode20utf8`, `x-unicode20utf8`: Node's
 * TextDecoder resolves them, its RangeError is any other), or IANA's alias `csUTF8`, which WHATWG
 * lacks. Only `utf-8`, `utf8` and `csUTF8` were taken until session 64. A label with white space
 * around it (quoted, `" utf-8"`) is none: the decoder would trim it, the kit takes the name as sent.
 */
function namesUtf8(charset: string): boolean {
  if (charset === "csutf8") return true;
  if (charset.trim() !== charset) return false;
  try {
    return new TextDecoder(charset).encoding === "utf-8";
  } catch {
    return false; // RangeError: not a label of any encoding
  }
}

/**
 * Why a JSON body's bytes are not taken as text, or undefined: a charset other than UTF-8 or US-ASCII
 * declared, or a Content-Type whose quoted string is never closed (415 naming `content-type`: a UTF-16
 * or Latin-1 body was decoded as UTF-8), or bytes that are not UTF-8 (400 naming `body`: Node's
 * decoder turned each into U+FFFD, and "Zo\xEB" was stored as "Zo\uFFFD"), or not ASCII in a body
 * declared US-ASCII (a byte above 0x7F is no US-ASCII text: a Latin-1 or Windows-1252 body labelled
 * so, which browsers read as Windows-1252, is not read as UTF-8).
 */
export function bodyTextIssue(contentType: string | undefined, body: Buffer): HttpError | undefined {
  const declared = contentType === undefined ? undefined : charsetOf(contentType);
  if (declared === MALFORMED)
    return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "The Content-Type header is malformed: a quoted string in it is not closed", "content-type");
  const charset = declared?.toLowerCase();
  if (charset !== undefined && ASCII_CHARSETS.has(charset))
    return isAscii(body) ? undefined : new HttpError(400, "BAD_REQUEST", `The body is declared ${charset} but holds bytes that are not ASCII`, "body");
  if (charset !== undefined && !namesUtf8(charset))
    return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", `JSON bodies are UTF-8 (RFC 8259) or US-ASCII, not ${charset.slice(0, 40) || "an empty charset"}`, "content-type");
  if (!isUtf8(body)) return new HttpError(400, "BAD_REQUEST", "The body is not UTF-8 text", "body");
  return undefined;
}
