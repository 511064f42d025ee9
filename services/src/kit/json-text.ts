/**
 * One linear pass over a JSON text, before JSON.parse (./request-guards.ts, and Kafka messages in
 * trading/infra/topicSchemas.ts): its nesting, whether a number may overflow a double, and the
 * number literals a double does not carry exactly (./exact-number.ts), with where the first is.
 */
import { beyondDouble } from "./exact-number";

/** What one pass over a JSON text finds outside its strings (jsonTextFacts). */
export interface JsonTextFacts {
  /** Its deepest array/object is deeper than the limit (the scan stops there). */
  tooDeep: boolean;
  /**
   * It holds a number that could overflow a double once parsed: a run of 309 or more digits, or an
   * exponent of three or more digits (`1e309`). False means findNonFiniteNumber would find nothing.
   */
  mayOverflow: boolean;
  /**
   * The magnitudes of the number literals it holds that their double does not carry exactly
   * (exact-number.ts, beyondDouble: 0 for one below the smallest double), as the doubles JSON.parse
   * makes of them; undefined when there is none.
   */
  inexactNumbers?: Set<number>;
  /** Where the first of them is ("a", "2", "b" for {"a":[0,1,{"b":...}]}), as written: the field a 400 names. */
  inexactPath?: string[];
  /** Where each of them starts in the text, in order (pathsAt names them all: a Kafka batch's bars are refused one by one). */
  inexactOffsets?: number[];
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/**
 * One linear pass over a JSON text, before JSON.parse: its nesting against `depthLimit` and whether a
 * number in it may overflow a double. Strings are jumped over with indexOf to their closing quote (one
 * not escaped by an odd run of backslashes): a third less CPU than looking at every character of a
 * body of bars, and the digits inside them are no numbers. (The overflow pre-check was a regular
 * expression, /\d[eE][+]?\d{3}|\d{309}/, over the whole text: it tried the 309-digit run at every
 * digit, a tenth of data-bridge's CPU on a post of bars.)
 */
export function jsonTextFacts(text: string, depthLimit: number): JsonTextFacts {
  let depth = 0;
  let mayOverflow = false;
  let inexactNumbers: Set<number> | undefined;
  let inexactPath: string[] | undefined;
  let inexactOffsets: number[] | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return { tooDeep: false, mayOverflow, inexactNumbers, inexactPath, inexactOffsets }; // an unterminated string: JSON.parse refuses the text
        let backslashes = 0;
        while (text.charCodeAt(i - 1 - backslashes) === 92 /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > depthLimit) return { tooDeep: true, mayOverflow, inexactNumbers, inexactPath, inexactOffsets };
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
    else if (isDigit(c)) {
      // A number literal (its sign is outside the scan: the value's magnitude is what is kept).
      const intEnd = digitsEnd(text, i + 1);
      let end = intEnd;
      let fractionDigits = 0;
      if (text.charCodeAt(end) === 46 /* . */) {
        const fractionEnd = digitsEnd(text, end + 1);
        fractionDigits = fractionEnd - end - 1;
        end = fractionEnd;
      }
      let largeExponent = false;
      if (text.charCodeAt(end) === 101 /* e */ || text.charCodeAt(end) === 69 /* E */) {
        let at = end + 1;
        if (text.charCodeAt(at) === 43 /* + */ || text.charCodeAt(at) === 45 /* - */) at++;
        end = digitsEnd(text, at);
        largeExponent = end - at >= 3;
        if (largeExponent) mayOverflow = true;
      }
      if (intEnd - i >= 309) mayOverflow = true;
      // Fewer than 16 digits in all is always exact (a double holds 15 to 17) unless an exponent of
      // three digits takes it below the smallest double (1e-400 is 0): only those are looked at.
      if (intEnd - i + fractionDigits >= 16 || largeExponent) {
        const literal = text.slice(i, end);
        if (beyondDouble(literal)) {
          (inexactNumbers ??= new Set()).add(Number(literal));
          // Named where it is written (rare: the text is refused), by a second scan up to it.
          inexactPath ??= pathAt(text, i);
          (inexactOffsets ??= []).push(i);
        }
      }
      i = end - 1;
    }
  }
  return { tooDeep: false, mayOverflow, inexactNumbers, inexactPath, inexactOffsets };
}

const ARRAY = -1;

/**
 * The path of the value starting at `offset` in a JSON text: each depth's key (unescaped) or element
 * index. A scan of its own, which jsonTextFacts runs only on finding an inexact literal: tracking
 * keys and indexes in its own pass cost 40 % more on a body of 5,000 bars (2.3 ms, not 1.6).
 */
export const pathAt = (text: string, offset: number): string[] => pathsAt(text, [offset])[0];

/** The paths of the values starting at `offsets` (ascending), in one scan of the text up to the last (pathAt). */
export function pathsAt(text: string, offsets: readonly number[]): string[][] {
  const paths: string[][] = [];
  // Per depth: the current key's opening quote in an object (ARRAY in an array), its closing quote,
  // and the element index in an array.
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  const index: number[] = [];
  let depth = 0;
  let stringStart = -1;
  let stringEnd = -1;
  let next = 0;
  const pathHere = (): string[] => {
    const path: string[] = [];
    for (let d = 1; d <= depth; d++) {
      if (keyStart[d] === ARRAY) path.push(String(index[d]));
      else if (keyStart[d] >= 0) {
        const quoted = text.slice(keyStart[d], keyEnd[d] + 1);
        try {
          path.push(JSON.parse(quoted) as string);
        } catch {
          path.push(quoted.slice(1, -1)); // a malformed escape: JSON.parse refuses the whole text anyway
        }
      }
    }
    return path;
  };
  for (let i = 0; next < offsets.length; i++) {
    while (next < offsets.length && offsets[next] <= i) {
      paths.push(pathHere());
      next++;
    }
    if (next === offsets.length) break;
    if (i >= text.length) return [...paths, ...offsets.slice(next).map(() => [])];
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      stringStart = i;
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return [...paths, ...offsets.slice(next).map(() => [])]; // an unterminated string: JSON.parse refuses the text
        let backslashes = 0;
        while (text.charCodeAt(i - 1 - backslashes) === 92 /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      stringEnd = i;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      keyStart[depth] = c === 91 ? ARRAY : -2;
      index[depth] = 0;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
    else if (c === 58 /* : */) {
      keyStart[depth] = stringStart;
      keyEnd[depth] = stringEnd;
    }
    else if (c === 44 /* , */ && keyStart[depth] === ARRAY) index[depth]++;
  }
  return paths;
}

const digitsEnd = (text: string, from: number): number => {
  let end = from;
  while (isDigit(text.charCodeAt(end))) end++;
  return end;
};

/** Whether the deepest array/object in a JSON text is deeper than `limit` (jsonTextFacts). */
export const jsonDepthExceeds = (text: string, limit: number): boolean => jsonTextFacts(text, limit).tooDeep;
