/**
 * A record's keys are checked like its values. TypeBox's `Type.Record(Type.String({ pattern }), V)`
 * is written as `patternProperties: { pattern: V }` and nothing else, and JSON Schema lets a key
 * that matches no pattern through unchecked: backtesting-engine's `parameters: {"bad key!": "text"}`
 * passed, key and value. At registration (the kit's onRoute hook) every object schema of a route's
 * request (body, querystring, path parameters; headers below their top level, where every other
 * header of the request is) that has `patternProperties` and says nothing of `additionalProperties`
 * gets `additionalProperties: false`: such a key is a 400 VALIDATION_ERROR naming it (errors.ts).
 * Copies are made where a schema changes; the route's own (perhaps shared) objects are left as they are.
 */
import type { RouteOptions } from "fastify";

type Schema = Record<string | symbol, unknown>;
const isSchema = (s: unknown): s is Schema => typeof s === "object" && s !== null && !Array.isArray(s);

/** Keywords holding one subschema, a list of them, or a map of them. */
const ONE = ["items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames", "additionalItems", "unevaluatedProperties", "unevaluatedItems"];
const LIST = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];
const MAP = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/** Whether an object schema takes keys its `patternProperties` do not match. */
export const leavesKeysOpen = (s: Schema): boolean => isSchema(s.patternProperties) && s.additionalProperties === undefined && s.unevaluatedProperties === undefined;

/** `schema` with every record closed to keys no pattern matches (the same object when nothing changes). */
export function closeRecords(schema: unknown): unknown {
  if (!isSchema(schema)) return schema;
  let out: Schema | undefined;
  const set = (key: string, value: unknown) => {
    if (value === schema[key]) return;
    out ??= { ...schema };
    out[key] = value;
  };
  for (const key of ONE) if (isSchema(schema[key])) set(key, closeRecords(schema[key]));
  for (const key of LIST) {
    const list = schema[key];
    if (!Array.isArray(list)) continue;
    const closed = list.map((s) => closeRecords(s));
    if (closed.some((s, i) => s !== list[i])) set(key, closed);
  }
  for (const key of MAP) {
    const map = schema[key];
    if (!isSchema(map)) continue;
    const entries = Object.entries(map).map(([k, s]) => [k, closeRecords(s)] as const);
    if (entries.some(([k, s]) => s !== map[k])) set(key, Object.fromEntries(entries));
  }
  if (leavesKeysOpen(schema)) set("additionalProperties", false);
  return out ?? schema;
}

/** At registration: the request schemas of `route` with their records closed (see above), in a new schema object when any changes. */
export function closeRouteRecords(route: Pick<RouteOptions, "schema">): void {
  const schema = route.schema as Schema | undefined;
  if (!schema) return;
  const changed: Schema = {};
  for (const part of ["body", "querystring", "query", "params"]) {
    const closed = closeRecords(schema[part]);
    if (closed !== schema[part]) changed[part] = closed;
  }
  // Headers: the top level holds every header the request has, so only the records inside one header's schema.
  const headers = schema.headers;
  if (isSchema(headers) && isSchema(headers.properties)) {
    const closed = closeRecords({ properties: headers.properties }) as Schema;
    if (closed.properties !== headers.properties) changed.headers = { ...headers, properties: closed.properties };
  }
  if (Object.keys(changed).length > 0) route.schema = { ...schema, ...changed } as RouteOptions["schema"];
}
