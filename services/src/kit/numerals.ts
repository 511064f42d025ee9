/**
 * Numbers in a URL's query, its path parameters and headers, read only as they are written in decimal.
 * ajv's coercion reads text the way JavaScript's Number() does: `limit=0x10` is 16, `0b11` 3, `0o7` 7,
 * ` 5` (a space) 5, and `Infinity` passes for a number. A request then means something other than
 * what it says, and a value a client never meant to send (a hex id, a padded field) is acted on
 * instead of refused, the class of data-bridge's `" 100"` and `"0x64"` prices (issue 10). Checked
 * before ajv coerces, so the answer is the platform's 400 naming the field.
 */

/** An ajv-shaped issue, as the kit's error handler reads it (errors.ts). */
export interface NumeralIssue {
  instancePath: string;
  schemaPath: string;
  keyword: "type";
  params: { type: "integer" | "number" };
  message: string;
}

const INTEGER_TEXT = /^-?\d+$/;
/** A number as written in decimal (an exponent allowed): not hex, binary, octal, padded, signed with +, nor Infinity. */
export const NUMBER_TEXT = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

type Schema = Record<string, unknown>;
const isSchema = (s: unknown): s is Schema => typeof s === "object" && s !== null;

function typesOf(schema: Schema): unknown[] {
  const t = schema.type;
  return Array.isArray(t) ? t : t === undefined ? [] : [t];
}

/**
 * "integer" or "number" when the schema takes only numbers; undefined when it takes text too (a
 * union with a string, where the text is the client's to send) or is no number at all.
 */
export function numericKind(schema: unknown): "integer" | "number" | undefined {
  if (!isSchema(schema)) return undefined;
  const types = typesOf(schema);
  if (types.length > 0) {
    if (!types.every((t) => t === "integer" || t === "number" || t === "null")) return undefined;
    return types.includes("number") ? "number" : types.includes("integer") ? "integer" : undefined;
  }
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (!Array.isArray(alternatives) || alternatives.length === 0) return undefined;
  const kinds = alternatives.map(numericKind);
  if (kinds.some((k) => k === undefined)) return undefined;
  return kinds.includes("number") ? "number" : "integer";
}

/**
 * The first property of an object-typed part whose text is not a decimal numeral where the schema wants a number.
 * The branches of an `allOf` (TypeBox's Type.Intersect) are read too, each of which the part must satisfy:
 * backtesting-engine's results page, an Intersect, took `limit=0x10` as 16 and `limit=%201` as 1 (session 64b).
 * (Not an `anyOf`'s or `oneOf`'s: another branch may take the text as text, as a union with a string does.)
 */
export function numeralIssue(schema: unknown, data: unknown): NumeralIssue | undefined {
  if (!isSchema(schema) || !isSchema(data)) return undefined;
  if (Array.isArray(schema.allOf))
    for (const branch of schema.allOf) {
      const issue = numeralIssue(branch, data);
      if (issue) return issue;
    }
  if (!isSchema(schema.properties)) return undefined;
  for (const [name, property] of Object.entries(schema.properties)) {
    if (!Object.hasOwn(data, name)) continue;
    // A number, or an array of numbers (a repeated query parameter; one given alone is coerced to an array).
    const kind = numericKind(property) ?? (isSchema(property) && typesOf(property).includes("array") ? numericKind(property.items) : undefined);
    if (kind === undefined) continue;
    const value = data[name];
    const texts = Array.isArray(value) ? value : [value];
    const shape = kind === "integer" ? INTEGER_TEXT : NUMBER_TEXT;
    if (texts.some((text) => typeof text === "string" && !shape.test(text)))
      return {
        instancePath: `/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`,
        schemaPath: `#/properties/${name}/type`,
        keyword: "type",
        params: { type: kind },
        message: kind === "integer" ? "must be an integer in decimal digits" : "must be a number in decimal notation",
      };
  }
  return undefined;
}
