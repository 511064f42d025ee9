/**
 * A JSON body's text (bodyTextIssue, called by the kit's JSON parser, ./request-guards.ts): UTF-8 (or
 * US-ASCII, its subset) only, decoded strictly. Moved here from ./request-framing.ts in session 64.
 *
 * The charset is read by jshttp's `content-type` (the Content-Type reader of Express and the rest of
 * jshttp: RFC 9110 §5.6.6 parameters, OWS around `=`, quoted strings with their quoted-pairs, the first
 * of a parameter sent twice), where the kit had a pattern of its own. Version 2 reads leniently and
 * never throws on a string (1.x threw a TypeError on any malformed header), and tells nothing of what
 * it passed over; two things it takes are refused first (malformation below), each a 415 naming
 * `content-type`:
 * - a quoted string never closed (`charset="utf-8`, `profile="x; charset=latin1`): the library reads it
 *   to the end of the header and drops that parameter, and any after it, without a word (the kit's
 *   reader answered `charset="utf-8` so: it read an empty charset);
 * - a byte above 0x7F outside a quoted string, the no-break space (U+00A0) foremost: RFC 9110's OWS is
 *   SP or HTAB (§5.6.3) and its tokens are ASCII, obs-text is only taken inside a quoted string
 *   (§5.6.4). The library keeps an NBSP as part of a name or value: `;\u00A0charset=latin1` declared
 *   a parameter named "\u00A0charset", no charset, and a Latin-1 body was read as UTF-8.
 * A throw (none in 2.x; a later version's, were it to come back) is the same 415. Until session 65 an
 * unclosed quote was found by appending a sentinel parameter for the library to read (`;\u2020=`), and
 * an NBSP fell through; now malformation walks the header as the library reads it, a walk tested
 * against that sentinel on every short header of the characters that matter (kit-body-text.test.ts).
 */
import { isAscii, isUtf8 } from "node:buffer";
import { parse as parseContentType } from "content-type";
import { HttpError } from "./errors";

const MALFORMED = Symbol("malformed Content-Type");

const SP = 0x20;
const HTAB = 0x09;

/**
 * Why a Content-Type is malformed in a way its reading depends on, or undefined. It walks the header
 * as the library reads it: the media type up to the first `;`; then each parameter's name up to `=`
 * (a `;` first: a parameter without a value); after that `=` and OWS, a `"` opens a quoted string
 * (closed by the next `"` that no `\` escapes), anything else is a token value up to `;`; after a closed
 * quote, anything up to `;` is passed over. A `"` anywhere else is an ordinary character, as the
 * library takes it (`a=b"c` is the value `b"c`).
 */
function malformation(contentType: string): string | undefined {
  let state: "type" | "name" | "beforeValue" | "value" | "quoted" = "type";
  for (let i = 0; i < contentType.length; i++) {
    const code = contentType.charCodeAt(i);
    if (state === "quoted") {
      if (code === 0x5c) i++; // a quoted-pair: the next character is itself, a `"` included
      else if (code === 0x22) state = "value"; // closed: what follows up to `;` is passed over
      continue;
    }
    if (code > 0x7f) {
      const which = code === 0xa0 ? "a no-break space (U+00A0), which is not white space in HTTP (SP or HTAB, RFC 9110 §5.6.3)" : `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
      return `The Content-Type header is malformed: ${which} outside a quoted string`;
    }
    if (code === 0x3b) state = "name";
    else if (state === "name" && code === 0x3d) state = "beforeValue";
    else if (state === "beforeValue" && code !== SP && code !== HTAB) state = code === 0x22 ? "quoted" : "value";
  }
  return state === "quoted" ? "The Content-Type header is malformed: a quoted string in it is not closed" : undefined;
}

/** The first charset a well-formed Content-Type declares, as sent (unquoted, its quoted-pairs read), undefined without one; MALFORMED if the library throws. */
function charsetOf(contentType: string): string | undefined | typeof MALFORMED {
  try {
    return parseContentType(contentType).parameters.charset;
  } catch {
    return MALFORMED;
  }
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
  const malformed = contentType === undefined ? undefined : malformation(contentType);
  if (malformed !== undefined) return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", malformed, "content-type");
  const declared = contentType === undefined ? undefined : charsetOf(contentType);
  if (declared === MALFORMED) return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "The Content-Type header is malformed", "content-type");
  const charset = declared?.toLowerCase();
  if (charset !== undefined && ASCII_CHARSETS.has(charset))
    return isAscii(body) ? undefined : new HttpError(400, "BAD_REQUEST", `The body is declared ${charset} but holds bytes that are not ASCII`, "body");
  if (charset !== undefined && !namesUtf8(charset))
    return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", `JSON bodies are UTF-8 (RFC 8259) or US-ASCII, not ${charset.slice(0, 40) || "an empty charset"}`, "content-type");
  if (!isUtf8(body)) return new HttpError(400, "BAD_REQUEST", "The body is not UTF-8 text", "body");
  return undefined;
}
