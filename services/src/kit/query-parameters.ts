/**
 * A query parameter the route's querystring schema does not declare is a 400 naming it. ajv ignores
 * properties a schema does not mention unless it says `additionalProperties: false`, which most
 * routes' querystring schemas did not: `GET /orders?statuss=filled` (a typo) answered every order as
 * if no filter had been given, and the client never learnt its filter was not applied. Checked here,
 * for every route that declares a querystring schema, whatever the schema says, before ajv (so the
 * answer is the same whether or not the schema also says `additionalProperties: false`).
 *
 * A route without a querystring schema is not checked: it reads no parameter (the kit's routes and
 * every service's take what they read through a schema), and the gateway's `/api/*` must pass any
 * query on to the service, which judges it. A route that takes no parameter and wants any refused
 * declares `Type.Object({})`. A schema that takes arbitrary keys (`additionalProperties` true or a
 * schema, `patternProperties`, a `$ref`, a shape not an object) is not checked either.
 */
import type { ValidationIssue } from "./union-issues";

type Schema = Record<string, unknown>;
const isSchema = (s: unknown): s is Schema => typeof s === "object" && s !== null && !Array.isArray(s);

/**
 * The parameter names a querystring schema declares: its `properties`, and those of every branch of
 * an `allOf` (TypeBox's Type.Intersect), `anyOf` or `oneOf`. Undefined when it takes any name.
 */
export function declaredParameters(schema: unknown): ReadonlySet<string> | undefined {
  const names = new Set<string>();
  const walk = (s: unknown): boolean => {
    if (s === false) return true; // takes nothing
    if (!isSchema(s)) return false; // `true` or no schema: takes anything
    if (s.$ref !== undefined || s.patternProperties !== undefined) return false;
    if (s.additionalProperties !== undefined && s.additionalProperties !== false) return false;
    const branches = ["allOf", "anyOf", "oneOf"].flatMap((k) => (Array.isArray(s[k]) ? (s[k] as unknown[]) : []));
    const hasProperties = isSchema(s.properties);
    if (!hasProperties && branches.length === 0 && s.type !== "object") return false;
    if (hasProperties) for (const name of Object.keys(s.properties as Schema)) names.add(name);
    return branches.every(walk);
  };
  return walk(schema) ? names : undefined;
}

/** Longest parameter name echoed in an answer (a client may send a name of kilobytes). */
const ECHOED_NAME_CHARS = 100;

/** The ajv-shaped issue (errors.ts names its field) of the first parameter of `query` not in `declared`, or undefined. */
export function unknownParameterIssue(declared: ReadonlySet<string>, query: unknown): ValidationIssue | undefined {
  if (!isSchema(query)) return undefined;
  for (const name of Object.keys(query)) {
    if (declared.has(name)) continue;
    const shown = name.length > ECHOED_NAME_CHARS ? `${name.slice(0, ECHOED_NAME_CHARS)}…` : name;
    const takes = declared.size > 0 ? `it takes ${[...declared].join(", ")}` : "it takes none";
    // An empty name (`?=x`) has no field to name: the message says what it is.
    const message = shown === "" ? `has a parameter with an empty name, which this route does not take (${takes})` : `is not a parameter of this route (${takes})`;
    return { instancePath: "", schemaPath: "#/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: shown }, message };
  }
  return undefined;
}
