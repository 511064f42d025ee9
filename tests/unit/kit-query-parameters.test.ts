/**
 * kit query-parameters.ts: a query parameter the route does not take is a 400 VALIDATION_ERROR
 * naming it, whatever shape the querystring schema has (an object with or without
 * `additionalProperties: false`, TypeBox's Type.Intersect, a union), and on a route with no
 * querystring schema, which takes none (the probes and the OpenAPI document's route too); a schema
 * that takes arbitrary names, and a route declaring `config: { takesAnyQuery: true }`, take any.
 * Before: ajv ignored the undeclared parameter, so `GET /orders?statuss=filled` answered every
 * order, and a route without a querystring schema ignored any query. The fleet's own routes are
 * checked on real services in tests/hostile/hostile.test.ts ("an undeclared query parameter ...").
 */
import { afterAll, describe, expect, it } from "vitest";
import { createService, defineService, Type } from "../../services/src/kit";
import { declaredParameters, settleQuerystring, unknownParameterIssue } from "../../services/src/kit/query-parameters";

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
    app.post("/unchecked", async () => ({ ok: true }));
    app.get("/shared", { schema: SHARED }, async () => ({ ok: true }));
    // Fastify reads `query` as the querystring schema (its types do not know the alias).
    app.get("/alias", { schema: { query: Type.Object({ q: Type.Optional(Type.String()) }) } as never }, async (req) => ({ query: req.query }));
    app.get("/any", { config: { takesAnyQuery: true } }, async (req) => ({ query: req.query }));
  },
});
/** A schema object given to a route without a querystring: the kit's empty one is added to a copy, this one is left as it was. */
const SHARED = { hide: true };

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

  it("an empty schema and a route with no querystring schema take none (before: the latter ignored any query)", async () => {
    expect((await get("/none")).statusCode).toBe(200);
    const takesNone = (name: string) => ({ code: "VALIDATION_ERROR", field: name, message: `Invalid querystring: ${name} is not a parameter of this route (it takes none)` });
    expect((await get("/none?a=1")).json().error).toMatchObject(takesNone("a"));
    expect((await get("/unchecked")).json()).toEqual({ query: {} });
    const r = await get("/unchecked?limit=5");
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject(takesNone("limit"));
    // Every method, HEAD (Fastify's copy of a GET) included, and a route given a schema object without a querystring.
    expect((await svc.app.inject({ method: "POST", url: "/unchecked?dryRun=1" })).json().error).toMatchObject(takesNone("dryRun"));
    expect((await svc.app.inject({ method: "HEAD", url: "/unchecked?x=1" })).statusCode).toBe(400);
    expect((await svc.app.inject({ method: "HEAD", url: "/unchecked" })).statusCode).toBe(200);
    expect((await get("/shared?x=1")).json().error).toMatchObject(takesNone("x"));
    expect(SHARED).toEqual({ hide: true });
    // Names cut short and the empty name as on any route.
    expect((await get(`/unchecked?${"n".repeat(500)}=1`)).json().error.field).toBe(`${"n".repeat(100)}…`);
    expect((await get("/unchecked?=1")).json().error).toMatchObject({ field: "query", message: "Invalid querystring: a parameter has no name (nothing before its \"=\"): name it or leave it out (this route takes none)" });
  });

  it("a schema taking any name, and a route declaring config.takesAnyQuery, take any; Fastify's `query` alias is a querystring schema", async () => {
    expect((await get("/open?a=1&b=2")).json()).toEqual({ query: { a: "1", b: "2" } });
    expect((await get("/any?anything=1&limit=0x10")).json()).toEqual({ query: { anything: "1", limit: "0x10" } });
    expect((await get("/alias?q=x")).json()).toEqual({ query: { q: "x" } });
    expect((await get("/alias?r=x")).json().error).toMatchObject({ field: "r", message: "Invalid querystring: r is not a parameter of this route (it takes q)" });
  });

  it("a kilobytes-long name is named cut short; an empty name is refused naming the query", async () => {
    const long = "n".repeat(5_000);
    const r = await get(`/plain?${long}=1`);
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe(`${"n".repeat(100)}…`);
    expect(r.body.length).toBeLessThan(1_000);
    // Session 63: `field` named nothing (there is no name to give); now the query, the message saying why.
    for (const query of ["=1", "&=x", "=", "limit=5&=x"]) {
      const empty = await get(`/plain?${query}`);
      expect(empty.statusCode, query).toBe(400);
      expect(empty.json().error, query).toMatchObject({ code: "VALIDATION_ERROR", field: "query", message: 'Invalid querystring: a parameter has no name (nothing before its "="): name it or leave it out (this route takes limit, status)' });
    }
  });

  it("the probes and the OpenAPI document's route take none; the document lists no parameter for a route taking none", async () => {
    for (const path of ["/health", "/ready", "/metrics", "/internal/openapi.json"]) {
      const r = await get(`${path}?x=1`);
      expect(r.statusCode, path).toBe(400);
      expect(r.json().error, path).toMatchObject({ code: "VALIDATION_ERROR", field: "x", message: "Invalid querystring: x is not a parameter of this route (it takes none)" });
    }
    expect((await get("/health")).statusCode).toBe(200);
    expect((await get("/metrics")).statusCode).toBe(200);
    const doc = (await get("/internal/openapi.json")).json();
    const params = doc.paths["/plain"].get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
    expect(params).toEqual(["query:limit", "query:status"]);
    expect(doc.paths["/unchecked"].get.parameters).toBeUndefined();
    expect(doc.paths["/any"].get.parameters).toBeUndefined();
  });

  it("the registered routes say which take any query (Service.routes, read by the generated tests)", () => {
    const route = (method: string, url: string) => svc.routes.find((r) => r.method === method && r.url === url);
    expect(route("GET", "/any")).toMatchObject({ takesAnyQuery: true });
    expect(route("GET", "/any")?.schema?.querystring).toBeUndefined();
    expect(route("GET", "/unchecked")?.takesAnyQuery).toBeUndefined();
    expect(route("GET", "/unchecked")?.schema?.querystring).toEqual({ type: "object", properties: {} });
    expect(svc.routes.filter((r) => r.takesAnyQuery).map((r) => r.url)).toEqual(["/any"]);
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
  it("settleQuerystring: the empty schema where none is given; takesAnyQuery beside a querystring schema refused at registration", () => {
    const plain: Parameters<typeof settleQuerystring>[0] = { method: "GET", url: "/x" };
    settleQuerystring(plain);
    expect(plain.schema).toEqual({ querystring: { type: "object", properties: {} } });
    const any: Parameters<typeof settleQuerystring>[0] = { method: "GET", url: "/x", config: { takesAnyQuery: true } };
    settleQuerystring(any);
    expect(any.schema).toBeUndefined();
    const own = { type: "object", properties: { a: {} } };
    const declared: Parameters<typeof settleQuerystring>[0] = { method: "GET", url: "/x", schema: { querystring: own } };
    settleQuerystring(declared);
    expect(declared.schema?.querystring).toBe(own);
    expect(() => settleQuerystring({ method: ["GET", "POST"], url: "/both", schema: { querystring: own }, config: { takesAnyQuery: true } })).toThrow(
      "GET,POST /both declares both config.takesAnyQuery and a querystring schema: it takes either any query or the parameters its schema declares",
    );
    expect(() => settleQuerystring({ method: "GET", url: "/both", schema: { query: own } as never, config: { takesAnyQuery: true } })).toThrow("/both declares both");
  });
  it("an issue only for a name not declared", () => {
    expect(unknownParameterIssue(new Set(["a"]), { a: "1" })).toBeUndefined();
    expect(unknownParameterIssue(new Set(["a"]), { a: "1", b: "2" })).toMatchObject({ keyword: "additionalProperties", params: { additionalProperty: "b" } });
  });
});
