/**
 * A query parameter a route does not take is a 400 naming it, on every route. ajv ignores properties
 * a schema does not mention unless it says `additionalProperties: false`, which most routes'
 * querystring schemas did not, and a route without a querystring schema had its query ignored
 * altogether: `GET /orders?statuss=filled` (a typo) answered every order as if no filter had been
 * given, `GET /api/users/me?limit=5` as if no limit had, and the client never learnt its parameter
 * was not applied. Checked here, before ajv (so the answer is the same whether or not the schema
 * also says `additionalProperties: false`):
 *
 * - a route with a querystring schema takes the parameters it declares, whatever the schema says;
 * - a route without one takes none: at registration (settleQuerystring, the kit's onRoute hook) it
 *   is given the empty schema, so any parameter is refused the same way ("it takes none");
 * - a route declaring `config: { takesAnyQuery: true }` takes any query and judges it itself: it
 *   gets no schema and nothing runs per request. Only the gateway's proxied `/api/*` does (it
 *   passes the query on to the service, which checks it), and declaring it beside a querystring
 *   schema is refused at registration;
 * - a schema that takes arbitrary keys (`additionalProperties` true or a schema, `patternProperties`,
 *   a `$ref`, a shape not an object) is not checked.
 *
 * The declared set is resolved once per route, when its validator is compiled.
 */
import type { RouteOptions } from "fastify";
import type { ValidationIssue } from "./union-issues";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route takes any query parameter and judges it itself: no querystring schema, no check (./query-parameters.ts). */
    takesAnyQuery?: true;
  }
}

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
/** A name a client chose (a parameter, a body key) as an answer echoes it: its first ECHOED_NAME_CHARS characters. */
export const shownName = (name: string): string => (name.length > ECHOED_NAME_CHARS ? `${name.slice(0, ECHOED_NAME_CHARS)}…` : name);

/** The ajv-shaped issue (errors.ts names its field) of the first parameter of `query` not in `declared`, or undefined. */
export function unknownParameterIssue(declared: ReadonlySet<string>, query: unknown): ValidationIssue | undefined {
  if (!isSchema(query)) return undefined;
  for (const name of Object.keys(query)) {
    if (declared.has(name)) continue;
    const shown = shownName(name);
    const takes = declared.size > 0 ? `it takes ${[...declared].join(", ")}` : "it takes none";
    const message = shown === "" ? `a parameter has no name (nothing before its "="): name it or leave it out (this route ${takes.slice(3)})` : `is not a parameter of this route (${takes})`;
    return { instancePath: "", schemaPath: "#/additionalProperties", keyword: "additionalProperties", params: { additionalProperty: shown }, message };
  }
  return undefined;
}

/**
 * The field an answer names for a parameter with no name (`?=1`, `?&=x`, `?=`): there is no name
 * to give, so the query as a whole. It named no field until session 63.
 */
export const NAMELESS_PARAMETER_FIELD = "query";

/** Whether a query's issue is that of a parameter with no name (unknownParameterIssue's): its field is NAMELESS_PARAMETER_FIELD, its message says it all. */
export const isNamelessParameterIssue = (issue: ValidationIssue): boolean => issue.keyword === "additionalProperties" && issue.params?.additionalProperty === "";

/**
 * At registration (the kit's onRoute hook): a route with no querystring schema is given one that
 * takes no parameter, unless it declares `config.takesAnyQuery`. A new schema object per route:
 * the route's own (perhaps shared) schema object is not changed.
 */
export function settleQuerystring(route: Pick<RouteOptions, "method" | "url" | "schema" | "config">): void {
  const schema = route.schema;
  // Fastify also reads `query` as the querystring schema.
  const declared = schema?.querystring !== undefined || (schema as { query?: unknown } | undefined)?.query !== undefined;
  if (route.config?.takesAnyQuery !== true) {
    if (!declared) route.schema = { ...schema, querystring: { type: "object", properties: {} } };
  } else if (declared) {
    throw new Error(`${[route.method].flat().join(",")} ${route.url} declares both config.takesAnyQuery and a querystring schema: it takes either any query or the parameters its schema declares`);
  }
}
