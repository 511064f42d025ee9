/**
 * kit unread-bodies.ts: a body sent to a route without a body schema is a 400 VALIDATION_ERROR
 * naming its first field (or `body`); no body, an empty one, `{}` and `null` are taken; a route
 * declaring `config: { takesAnyBody: true }` reads any; its own preValidation hooks still run after
 * the check. Before (session 51, tests/hostile/session-51.test.ts): the body was parsed and ignored,
 * and `DELETE /namespaces/:ns/keys/:key {"expectedVersion":1}` deleted the key at any version.
 */
import { afterAll, describe, expect, it } from "vitest";
import { createService, defineService, Type } from "../../services/src/kit";
import { settleBody, unreadBodyIssue } from "../../services/src/kit/unread-bodies";

let hooked = 0;
const probe = defineService({
  name: "central-hub", // any catalog entry: its datastore is never reached
  config: {},
  register({ app }) {
    app.post("/none", async () => ({ ok: true }));
    app.delete("/none", async () => ({ ok: true }));
    app.post("/hooked", { preValidation: async () => void hooked++ }, async () => ({ ok: true }));
    app.post("/any", { config: { takesAnyBody: true } }, async (req) => ({ got: req.body }));
    app.post("/schema", { schema: { body: Type.Object({ a: Type.String() }, { additionalProperties: false }) } }, async (req) => ({ got: req.body }));
  },
});

describe("kit: a body sent to a route that takes none", async () => {
  const svc = await createService(probe, { env: { DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" }, defaultMetrics: false });
  afterAll(() => svc.close());
  const send = (method: "POST" | "DELETE", url: string, payload?: string, type = "application/json") =>
    svc.app.inject({ method, url, payload, headers: payload === undefined ? {} : { "content-type": type } });

  it("is a 400 naming its first field, or body for another value; nothing, {} and null are taken", async () => {
    for (const [method, url, payload, type, field] of [
      ["DELETE", "/none", '{"expectedVersion":1}', "application/json", "expectedVersion"],
      ["POST", "/none", '{"dryRun":true,"b":2}', "application/json", "dryRun"],
      ["POST", "/none", "[]", "application/json", "body"],
      ["POST", "/none", '"x"', "application/json", "body"],
      ["POST", "/none", '""', "application/json", "body"],
      ["POST", "/none", '""', "Application/JSON; charset=utf-8", "body"],
      ["POST", "/none", "0", "application/json", "body"],
      ["POST", "/none", "run it", "text/plain", "body"],
      ["POST", "/hooked", '{"x":1}', "application/json", "x"],
    ] as const) {
      const r = await send(method, url, payload, type);
      expect([r.statusCode, r.json().error?.code, r.json().error?.field], `${method} ${url} ${payload}`).toEqual([400, "VALIDATION_ERROR", field]);
    }
    expect(hooked).toBe(0);
    for (const payload of [undefined, "{}", "null", " {} "]) expect((await send("POST", "/none", payload)).statusCode, String(payload)).toBe(200);
    expect((await send("POST", "/none", "", "text/plain")).statusCode, "an empty text body").toBe(200);
    expect((await send("POST", "/hooked", "{}")).statusCode).toBe(200);
    expect(hooked).toBe(1);
    expect((await send("POST", "/any", '{"x":[1]}')).json()).toEqual({ got: { x: [1] } });
    expect((await send("POST", "/schema", '{"a":"b","c":1}')).json().error.field).toBe("c");
  });

  it("names the field as sent, at most 100 characters; a route declaring takesAnyBody beside a body schema is refused at registration", () => {
    expect(unreadBodyIssue({ ["k".repeat(300)]: 1 })?.field).toBe("k".repeat(100));
    for (const nothing of [{}, null, undefined, "", Buffer.alloc(0)]) expect(unreadBodyIssue(nothing)).toBeUndefined();
    expect(unreadBodyIssue(Buffer.from("x"))?.field).toBe("body");
    expect(() => settleBody({ method: "POST", url: "/x", schema: { body: {} }, config: { takesAnyBody: true } } as never)).toThrow(/takesAnyBody and a body schema/);
  });
});
