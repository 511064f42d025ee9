/**
 * kit record-keys.ts: a key of a record (TypeBox Type.Record, JSON Schema `patternProperties`) that
 * matches none of its patterns is a 400 VALIDATION_ERROR naming it, in a body (at any depth, in
 * arrays and unions too) and in a query; before, ajv let it through with its value unchecked
 * (backtesting-engine's `parameters: {"bad key!": "text"}` passed). The fleet's own routes are
 * checked on real services in tests/services/openapi.test.ts ("no record of a request ...").
 */
import { afterAll, describe, expect, it } from "vitest";
import { createService, defineService, Type } from "../../services/src/kit";
import { closeRecords, leavesKeysOpen } from "../../services/src/kit/record-keys";

const Name = Type.String({ pattern: "^[a-z]{1,8}$" });
const Params = Type.Record(Name, Type.Number());
/** One schema object given to two routes: each gets a closed copy, this one is left as it was. */
const SHARED = Type.Object({ parameters: Params }, { additionalProperties: false });

const probe = defineService({
  name: "central-hub", // any catalog entry: its datastore is never reached
  config: {},
  register({ app }) {
    app.post("/flat", { schema: { body: Params } }, async (req) => ({ body: req.body }));
    app.post("/shared", { schema: { body: SHARED } }, async (req) => ({ body: req.body }));
    app.post("/deep", { schema: { body: Type.Object({ runs: Type.Array(Type.Union([Type.Null(), SHARED])) }) } }, async (req) => ({ body: req.body }));
    app.post("/optional", { schema: { body: Type.Optional(Type.Object({ tags: Type.Optional(Type.Record(Name, Type.String())) })) } }, async (req) => ({ body: req.body ?? null }));
    app.get("/query", { schema: { querystring: Type.Record(Name, Type.String()) } }, async (req) => ({ query: req.query }));
  },
});

describe("kit: a record's key no pattern matches", async () => {
  const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
  afterAll(() => svc.close());
  const post = (url: string, body: unknown) => svc.app.inject({ method: "POST", url, payload: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { "content-type": "application/json" } });

  it("is a 400 naming the key, value and all (before: taken unchecked)", async () => {
    const r = await post("/flat", { fast: 5, "bad key!": "text" });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "bad key!" });
    expect((await post("/shared", { parameters: { Fast: 5 } })).json().error.field).toBe("parameters.Fast");
    expect((await post("/deep", { runs: [null, { parameters: { a: 1 } }, { parameters: { "": 1 } }] })).statusCode).toBe(400);
    expect((await post("/optional", { tags: { ok: "x", "no way": "y" } })).json().error.field).toBe("tags.no way");
    const q = await svc.app.inject({ method: "GET", url: "/query?ok=1&Bad=2" });
    expect(q.statusCode).toBe(400);
    expect(q.json().error.field).toBe("Bad");
  });

  it("a key of kilobytes is named by its first 100 characters (it was echoed whole, in field and message)", async () => {
    const key = "k!".repeat(5_000);
    const r = await post("/shared", { parameters: { [key]: 1 } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe(`parameters.${key.slice(0, 100)}…`);
    expect(r.body.length).toBeLessThan(600);
  });

  it("keys that match are taken as before, and an optional body may still be left out", async () => {
    expect((await post("/flat", { fast: 5, slow: 20 })).json()).toEqual({ body: { fast: 5, slow: 20 } });
    expect((await post("/shared", { parameters: {} })).statusCode).toBe(200);
    expect((await post("/deep", { runs: [null, { parameters: { a: 1 } }] })).statusCode).toBe(200);
    expect((await post("/optional", undefined)).json()).toEqual({ body: null });
    expect((await svc.app.inject({ method: "GET", url: "/query?ok=1" })).json()).toEqual({ query: { ok: "1" } });
  });

  it("registered schemas are closed copies; the route's own objects are unchanged", () => {
    expect(leavesKeysOpen(SHARED.properties.parameters as never)).toBe(true);
    const shared = svc.routes.find((r) => r.url === "/shared")!.schema!.body as { properties: { parameters: Record<string, unknown> } };
    expect(shared.properties.parameters.additionalProperties).toBe(false);
  });
});

describe("closeRecords", () => {
  it("adds additionalProperties: false beside patternProperties only where nothing is said of other keys", () => {
    expect(closeRecords(Params)).toMatchObject({ additionalProperties: false });
    const open = { type: "object", patternProperties: { "^a$": {} }, additionalProperties: { type: "string" } };
    expect(closeRecords(open)).toBe(open);
    const plain = Type.Object({ a: Type.String() });
    expect(closeRecords(plain)).toBe(plain);
    expect(closeRecords({ type: "array", items: [Params] })).toMatchObject({ items: [{ additionalProperties: false }] });
  });
});
