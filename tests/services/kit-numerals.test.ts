/**
 * Numbers in a query, path parameters and headers are read only as decimal numerals (kit numerals.ts):
 * ajv's coercion took `limit=0x10` as 16 (found by session 39's hostile check of the page cursors),
 * and likewise `0b11`, `0o7`, ` 5` and `Infinity`, so a request was acted on as something it did not say.
 */
import { afterAll, describe, expect, it } from "vitest";
import { createService, defineService, loadConfig, Type } from "../../services/src/kit";

const probe = defineService({
  name: "central-hub", // any catalog entry: requires dragonfly, never reached here
  config: {},
  register({ app }) {
    app.get(
      "/page",
      {
        schema: {
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            price: Type.Optional(Type.Number()),
            ids: Type.Optional(Type.Array(Type.Integer())),
            depth: Type.Optional(Type.Union([Type.Integer(), Type.Literal("all")])),
          }),
        },
      },
      async (req) => ({ query: req.query }),
    );
    // A querystring made of parts (TypeBox's Intersect: an allOf), as backtesting-engine's results page is.
    app.get(
      "/joined",
      { schema: { querystring: Type.Intersect([Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })) }), Type.Object({ sort: Type.Optional(Type.String()) })]) } },
      async (req) => ({ query: req.query }),
    );
    app.get("/items/:n", { schema: { params: Type.Object({ n: Type.Integer({ minimum: 0 }) }) } }, async (req) => ({ n: req.params.n }));
    app.get("/paged", { schema: { headers: Type.Object({ "x-page": Type.Optional(Type.Integer({ minimum: 0 })) }) } }, async (req) => ({ page: req.headers["x-page"] }));
  },
});

describe("kit: numbers in the URL and headers are decimal numerals", async () => {
  const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://:pw@127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
  const base = await svc.listen({ port: 0, host: "127.0.0.1" });
  afterAll(() => svc.close());
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; field?: string; message: string }; query?: Record<string, unknown>; n?: number; page?: number } };
  };

  it.each(["0x10", "0b11", "0o7", "%2010", "10%20", "Infinity", "1e2", "+5", "1.0", "١٢"])("refuses limit=%s with a 400 naming limit", async (text) => {
    const { status, body } = await get(`/page?limit=${text}`);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "limit" });
  });

  it.each(["0x1p3", "Infinity", "-Infinity", " 1.5", "1_000", "0x10"])("refuses price=%s with a 400 naming price", async (text) => {
    const { status, body } = await get(`/page?price=${encodeURIComponent(text)}`);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "price" });
  });

  it("refuses a non-decimal item of a repeated parameter, a path parameter and a header", async () => {
    expect((await get("/page?ids=1&ids=0x2")).body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "ids" });
    expect((await get("/items/0x10")).body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "n" });
    expect((await get("/paged", { "x-page": "0x10" })).body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "x-page" });
  });

  it("reads the parts of an intersected querystring alike (limit=0x10 was 16 there, session 64b)", async () => {
    for (const text of ["0x10", "%201", "1e1"]) expect((await get(`/joined?limit=${text}`)).body.error, text).toMatchObject({ code: "VALIDATION_ERROR", field: "limit" });
    expect((await get("/joined?limit=16&sort=x")).body.query).toEqual({ limit: 16, sort: "x" });
  });

  it("reads decimal numerals as before, and a union with text keeps its text", async () => {
    expect((await get("/page?limit=16&price=-12.5e1&ids=1&ids=2")).body.query).toEqual({ limit: 16, price: -125, ids: [1, 2] });
    expect((await get("/page?price=.5")).body.query).toEqual({ price: 0.5 });
    expect((await get("/page?depth=all")).body.query).toEqual({ depth: "all" });
    expect((await get("/page?depth=3")).body.query).toEqual({ depth: 3 });
    expect((await get("/items/007")).body.n).toBe(7);
    expect((await get("/paged", { "x-page": "2" })).body.page).toBe(2);
    const over = await get("/page?limit=1001");
    expect(over.status).toBe(400);
    expect(over.body.error?.field).toBe("limit");
  });
});

describe("kit: a number from the environment is a decimal numeral too", () => {
  it("refuses 0x10 for a number variable, naming it; reads 12.5 and 1e3", () => {
    expect(() => loadConfig("x", { RATIO: Type.Number() }, { RATIO: "0x10" })).toThrow(/RATIO/);
    expect(() => loadConfig("x", { RATIO: Type.Number() }, { RATIO: "Infinity" })).toThrow(/RATIO/);
    // Padded, refused as a padded enum value is (session 62: PORT=" 80"), the spaces shown in the message.
    expect(() => loadConfig("x", { RATIO: Type.Number() }, { RATIO: " 12.5 " })).toThrow(/RATIO must be a number \(got " 12\.5 "\)/);
    expect(loadConfig("x", { RATIO: Type.Number() }, { RATIO: "12.5" }).RATIO).toBe(12.5);
    expect(loadConfig("x", { RATIO: Type.Number() }, { RATIO: "1e3" }).RATIO).toBe(1000);
  });
});
