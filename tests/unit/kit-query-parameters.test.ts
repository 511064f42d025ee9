/**
 * kit query-parameters.ts: a query parameter the route's querystring schema does not declare is a
 * 400 VALIDATION_ERROR naming it, whatever shape the schema has (an object with or without
 * `additionalProperties: false`, TypeBox's Type.Intersect, a union); a schema that takes arbitrary
 * names, and a route with no querystring schema, take any. Before: ajv ignored the undeclared
 * parameter, so `GET /orders?statuss=filled` answered every order. The fleet's own routes are
 * checked on real services in tests/hostile/hostile.test.ts ("an undeclared query parameter ...").
 */
import { afterAll, describe, expect, it } from "vitest";
import { createService, defineService, Type } from "../../services/src/kit";
import { declaredParameters, unknownParameterIssue } from "../../services/src/kit/query-parameters";

const probe = defineService({
  name: "central-hub", // any catalog entry: its datastore is never reached
  config: {},
  register({ app }) {
    const List = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })), status: Type.Optional(Type.Union([Type.Literal("open"), Type.Literal("filled")])) });
    app.get("/plain", { schema: { querystring: List } }, async (req) => ({ query: req.query }));
    app.get("/closed", { schema: { querystring: Type.Object({ at: Type.String() }, { additionalProperties: false }) } }, async (req) => ({ query: req.query }));
    const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })), offset: Type.Optional(Type.Integer({ minimum: 0 })) });
    app.get("/intersect", { schema: { querystring: Type.Intersect([Page, Type.Object({ sort: Type.Optional(Type.Literal("job")) })]) } }, async (req) => ({ query: req.query }));
    app.get("/none", { schema: { querystring: Type.Object({}) } }, async (req) => ({ query: req.query }));
    app.get("/open", { schema: { querystring: Type.Object({ a: Type.Optional(Type.String()) }, { additionalProperties: Type.String() }) } }, async (req) => ({ query: req.query }));
    app.get("/unchecked", async (req) => ({ query: req.query }));
  },
});

describe("kit: an undeclared query parameter", async () => {
  const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
  afterAll(() => svc.close());
  const get = (url: string) => svc.app.inject({ method: "GET", url });

  it("is a 400 naming it, with the parameters the route takes (before: ignored, the filter silently not applied)", async () => {
    const r = await get("/plain?statuss=filled");
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "statuss", message: "Invalid querystring: statuss is not a parameter of this route (it takes limit, status)" });
    // Beside valid ones, and before any other problem of the query.
    expect((await get("/plain?limit=5&Status=open")).json().error.field).toBe("Status");
    expect((await get("/plain?limit=0x10&sort=1")).json().error.field).toBe("sort");
    // Without a value, repeated, bracketed: a name all the same.
    expect((await get("/plain?verbose")).json().error.field).toBe("verbose");
    expect((await get("/plain?x=1&x=2")).json().error.field).toBe("x");
    expect((await get("/plain?limit[]=3")).json().error.field).toBe("limit[]");
  });

  it("declared parameters still work, and a query with none is as before", async () => {
    expect((await get("/plain?limit=5&status=open")).json()).toEqual({ query: { limit: 5, status: "open" } });
    expect((await get("/plain")).json()).toEqual({ query: {} });
    expect((await get("/plain?")).json()).toEqual({ query: {} });
    expect((await get("/plain?limit=11")).json().error.field).toBe("limit");
  });

  it("the same answer where the schema already said additionalProperties: false", async () => {
    expect((await get("/closed?at=x")).statusCode).toBe(200);
    const r = await get("/closed?at=x&when=y");
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "when", message: "Invalid querystring: when is not a parameter of this route (it takes at)" });
  });

  it("an intersection takes the parameters of each of its parts (additionalProperties: false on a part would refuse the others')", async () => {
    expect((await get("/intersect?limit=2&offset=1&sort=job")).json()).toEqual({ query: { limit: 2, offset: 1, sort: "job" } });
    const r = await get("/intersect?limit=2&order=job");
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe("order");
  });

  it("an empty schema takes none; a schema taking any name and a route with no querystring schema take any", async () => {
    expect((await get("/none")).statusCode).toBe(200);
    expect((await get("/none?a=1")).json().error).toMatchObject({ field: "a", message: "Invalid querystring: a is not a parameter of this route (it takes none)" });
    expect((await get("/open?a=1&b=2")).json()).toEqual({ query: { a: "1", b: "2" } });
    expect((await get("/unchecked?anything=1")).json()).toEqual({ query: { anything: "1" } });
  });

  it("a kilobytes-long name is named cut short; an empty name is refused naming no field", async () => {
    const long = "n".repeat(5_000);
    const r = await get(`/plain?${long}=1`);
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe(`${"n".repeat(100)}…`);
    expect(r.body.length).toBeLessThan(1_000);
    const empty = await get("/plain?=1");
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.field).toBeUndefined();
    expect(empty.json().error.message).toBe("Invalid querystring: has a parameter with an empty name, which this route does not take (it takes limit, status)");
  });

  it("the probes and the OpenAPI document are unchanged (no querystring schema)", async () => {
    expect((await get("/health?x=1")).statusCode).toBe(200);
    const doc = (await get("/internal/openapi.json?x=1")).json();
    const params = doc.paths["/plain"].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
    expect(params).toEqual(["query:limit", "query:status"]);
  });
});

describe("kit: declaredParameters", () => {
  it("reads properties, allOf/anyOf/oneOf branches; undefined where any name is taken", () => {
    expect(declaredParameters({ type: "object", properties: { a: {}, b: {} } })).toEqual(new Set(["a", "b"]));
    expect(declaredParameters({ allOf: [{ type: "object", properties: { a: {} } }, { type: "object", properties: { b: {} } }] })).toEqual(new Set(["a", "b"]));
    expect(declaredParameters({ anyOf: [{ type: "object", properties: { a: {} } }, { type: "object", properties: { c: {} } }] })).toEqual(new Set(["a", "c"]));
    expect(declaredParameters({ type: "object", properties: {} })).toEqual(new Set());
    expect(declaredParameters({ type: "object", properties: { a: {} }, additionalProperties: true })).toBeUndefined();
    expect(declaredParameters({ type: "object", patternProperties: { "^x-": {} } })).toBeUndefined();
    expect(declaredParameters({ allOf: [{ type: "object", properties: { a: {} } }, { type: "object", additionalProperties: {} }] })).toBeUndefined();
    expect(declaredParameters({ $ref: "Query#" })).toBeUndefined();
    expect(declaredParameters({})).toBeUndefined();
    expect(declaredParameters(true)).toBeUndefined();
  });
  it("an issue only for a name not declared", () => {
    expect(unknownParameterIssue(new Set(["a"]), { a: "1" })).toBeUndefined();
    expect(unknownParameterIssue(new Set(["a"]), { a: "1", b: "2" })).toMatchObject({ keyword: "additionalProperties", params: { additionalProperty: "b" } });
  });
});
