/**
 * Session 42's secrets hunt: the kit's logger censors a field named like a credential at any depth.
 * pino's paths (`*.password`) were one level deep: a credential two levels down, in an array of
 * objects, or in the request an HTTP client's error carries (`err.config.headers.authorization`)
 * was written in clear.
 */
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { createLogger, createService, defineService } from "../../services/src/kit";
import { accessLogOf } from "../../services/src/kit/probes";
import { redactFields } from "../../services/src/kit/log-redaction";
import { LazyRequestLogger } from "../../services/src/kit/request-logger";

/** A secret of no credential shape (no `Bearer`, no `sk_`, no `password=`): only its field's name says what it is. */
const secret = () => `v${randomBytes(12).toString("hex")}`;

function capture() {
  const lines: string[] = [];
  const log = createLogger("svc", "trace", { write: (s: string) => void lines.push(s) });
  return { log, lines, text: () => lines.join("") };
}

describe("log lines: credentials censored at any depth", () => {
  it("censors credential-named fields nested deeper than one level, and in arrays of objects", () => {
    const { log, text } = capture();
    const s = Array.from({ length: 6 }, secret);
    log.info({ user: { profile: { name: "ann", password: s[0] } } }, "nested");
    log.info({ batch: [{ id: 1, token: s[1] }, { id: 2, nested: [{ apiKey: s[2] }] }] }, "array");
    log.info({ a: { b: { c: { d: { e: { f: { g: { refresh_token: s[3] } } } } } } } }, "deep");
    log.info({ res: { raw: { headers: { "set-cookie": [`sid=${s[4]}`], "X-Api-Key": s[5] } } } }, "headers");
    for (const v of s) expect(text()).not.toContain(v);
    expect(text()).toContain('"password":"[REDACTED]"');
    expect(text()).toContain('"name":"ann"');
    expect(text()).toContain('"id":2');
  });

  it("censors the request an HTTP client's error carries (err.config.headers.authorization), as an error and as a plain object", () => {
    const { log, text } = capture();
    const [a, b, c] = [secret(), secret(), secret()];
    const failure = Object.assign(new Error("Request failed with status code 401"), { config: { url: "https://api.example/v1", headers: { authorization: a, accept: "application/json" } } });
    log.error({ err: failure }, "upstream refused");
    log.error({ err: { config: { headers: { authorization: b } } } }, "plain");
    log.warn({ job: "sync", cause: Object.assign(new Error("x"), { options: { auth: { password: c } } }) }, "nested error");
    const d = secret();
    class Upstream {
      headers = { Authorization: d, host: "api.example" };
    }
    log.info({ call: new Upstream() }, "class instance");
    for (const v of [a, b, c, d]) expect(text()).not.toContain(v);
    expect(text()).toContain('"host":"api.example"');
    expect(text()).toContain("Request failed with status code 401");
    expect(text()).toContain('"accept":"application/json"');
  });

  it("keeps the records of a credential audit lines log (apiKeyId, sessionId, tokenExpiresAt), and other fields", () => {
    const { log, lines } = capture();
    log.info({ userId: "u1", apiKeyId: "k1", sessionId: "s1", tokenExpiresAt: "2026-12-05T00:00:00Z", key: "orders:u1", symbol: "BTCUSDT" }, "audit");
    expect(JSON.parse(lines[0])).toMatchObject({ userId: "u1", apiKeyId: "k1", sessionId: "s1", tokenExpiresAt: "2026-12-05T00:00:00Z", key: "orders:u1", symbol: "BTCUSDT" });
  });

  it("never changes the caller's objects, and writes cycles and dates as pino does", () => {
    const { log, lines } = capture();
    const s = secret();
    const fields: Record<string, unknown> = { user: { profile: { password: s } }, at: new Date("2026-12-05T00:00:00Z") };
    (fields.user as Record<string, unknown>).self = fields.user;
    log.info(fields, "cycle");
    expect((fields.user as { profile: { password: string } }).profile.password).toBe(s);
    expect(lines[0]).not.toContain(s);
    expect(JSON.parse(lines[0])).toMatchObject({ at: "2026-12-05T00:00:00.000Z", user: { self: "[Circular]" } });
  });

  it("a request's child logger censors too; the access line's logger writes its fixed fields as given", () => {
    const { log, lines, text } = capture();
    const s = secret();
    log.child({ requestId: "r1" }).info({ body: { account: { password: s } } }, "child");
    accessLogOf(log).info({ requestId: "r2", method: "GET", url: "/orders", statusCode: 200, ms: 1.5 }, "request completed");
    expect(text()).not.toContain(s);
    expect(JSON.parse(lines[1])).toMatchObject({ requestId: "r2", method: "GET", url: "/orders", statusCode: 200, ms: 1.5 });
  });

  it("returns the same object when there is nothing to censor (the cost of most lines is a walk, not a copy)", () => {
    const fields = { userId: "u1", order: { id: "o1", legs: [{ qty: "1" }] } };
    expect(redactFields(fields)).toBe(fields);
  });

  // Session 43's secrets hunt: pino runs the bindings formatter on the root's base only.
  it("censors a child logger's own bindings at any depth: a child, a grandchild, one made with options, setBindings, a request's child", () => {
    const { log, lines, text } = capture();
    const s = Array.from({ length: 6 }, secret);
    const child = log.child({ datastore: "payments", upstream: { url: "https://api.example", headers: { authorization: s[0] } } });
    child.info("child");
    child.child({ job: { runs: [{ id: 1, apiKey: s[1] }] } }).warn("grandchild");
    log.child({ conn: { password: s[2] } }, { msgPrefix: "[x] ", formatters: { log: (o: object) => o } }).info("with options");
    const rebound = log.child({ stage: 1 });
    rebound.setBindings({ client: { refresh_token: s[3] } });
    rebound.info("rebound");
    accessLogOf(log).child({ session: { cookie: s[4] } }).info("access child");
    new LazyRequestLogger(log, { requestId: "r9" }, {}).child({ peer: { "x-api-key": s[5] } }).error("request child");
    expect(lines).toHaveLength(6);
    for (const v of s) expect(text()).not.toContain(v);
    expect(JSON.parse(lines[0])).toMatchObject({ datastore: "payments", upstream: { url: "https://api.example", headers: { authorization: "[REDACTED]" } } });
    expect(JSON.parse(lines[1])).toMatchObject({ datastore: "payments", job: { runs: [{ id: 1, apiKey: "[REDACTED]" }] } });
    expect(JSON.parse(lines[5])).toMatchObject({ requestId: "r9", peer: { "x-api-key": "[REDACTED]" } });
  });

  // Session 43's secrets hunt: the access line cut the target at `?` only.
  it("the access line and the 404 message write the path without a fragment a client sent (GET /x#access_token=...)", async () => {
    const lines: string[] = [];
    const svc = await createService(defineService({ name: "database-service", config: {}, register() {} }), {
      env: { POSTGRES_URL: "postgresql://app:pw@127.0.0.1:1/db" },
      logStream: { write: (s: string) => void lines.push(s) },
      defaultMetrics: false,
    });
    try {
      const port = Number(new URL(await svc.listen({ port: 0, host: "127.0.0.1" })).port);
      const [f, q] = [secret(), secret()];
      const send = (target: string) =>
        new Promise<string>((resolve, reject) => {
          let answer = "";
          const socket = connect(port, "127.0.0.1", () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
          socket.on("data", (c: Buffer) => (answer += c.toString()));
          socket.on("close", () => resolve(answer));
          socket.on("error", reject);
        });
      const answer = await send(`/no/such/route#access_token=${f}`);
      await send(`/other/route?x=1#token=${q}`);
      expect(answer).toMatch(/^HTTP\/1\.1 404/);
      expect(answer).not.toContain(f);
      const access = lines.filter((l) => l.includes("request completed"));
      expect(access).toHaveLength(2);
      expect(access.join("")).not.toContain(f);
      expect(access.join("")).not.toContain(q);
      expect(JSON.parse(access[0])).toMatchObject({ method: "GET", url: "/no/such/route", statusCode: 404 });
      expect(JSON.parse(access[1])).toMatchObject({ url: "/other/route" });
    } finally {
      await svc.close();
    }
  });
});

// Session 44's secrets hunt: `pin` is inside `shipping` and `mapping`, so it was no credential word at all.
describe("log lines: a PIN, passcode or card code is censored as a word of the name", () => {
  it("censors pin, adminPin, PIN_CODE, card.cvv, user-passcode; not shipping, mapping, pinned, pinCount", async () => {
    const { hasCredentialWord } = await import("../../services/src/kit/credential-words");
    const { log, text } = capture();
    const s = Array.from({ length: 6 }, secret);
    log.info({ pin: s[0], user: { adminPin: s[1] }, form: [{ PIN_CODE: s[2] }], card: { cvv: s[3] }, "user-passcode": s[4], pin2: s[5] }, "pins");
    log.info({ shipping: "express", mapping: "m1", pinned: true, pinCount: 3, spinner: "on" }, "not pins");
    for (const v of s) expect(text()).not.toContain(v);
    expect(text()).toContain('"adminPin":"[REDACTED]"');
    expect(text()).toContain('"shipping":"express"');
    expect(text()).toContain('"mapping":"m1"');
    expect(text()).toContain('"pinned":true');
    expect(text()).toContain('"pinCount":3');
    expect(text()).toContain('"spinner":"on"');
    // Spans drop attributes by the same word rule.
    const { scrubAttributes } = await import("../../services/src/kit/telemetry/scrub");
    expect(scrubAttributes({ "app.user.pin": s[0], "app.shipping": "express" })).toEqual({ "app.user.pin": "[REDACTED]", "app.shipping": "express" });
    expect(["pin", "adminPin", "ADMIN_PIN", "PINCode", "x.cvc"].every(hasCredentialWord)).toBe(true);
    expect(["shipping", "mapping", "pinned", "PINNED_RELEASE", "spin", "opinion"].some(hasCredentialWord)).toBe(false);
  });
});
