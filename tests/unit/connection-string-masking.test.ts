/**
 * Session 43's secrets hunt: a login inside a connection string, as the masks of the spans, of the
 * log's `err` and of the config's start error wrote it. The userinfo mask of spans and logs wanted a
 * user before the `:` (the platform's own DRAGONFLY_URL is `redis://:password@host`, no user) and
 * stopped at a `/` or the first `@` of the password; the config's start error masked only the first
 * item of a refused list and also stopped at the password's first `@`.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, createLogger, createService, datastoreEnv, defineService, envList, envUrl, loadConfig, Type, type ConfigSchema } from "../../services/src/kit";
import { scrubSpan, scrubString } from "../../services/src/kit/telemetry";
import type { ReadableSpan } from "../../services/node_modules/@opentelemetry/sdk-trace-base";

/** A password of no credential shape, with a marker to find any piece of it. */
const pw = () => `Zq${randomBytes(6).toString("hex")}`;

const refusal = (schema: ConfigSchema, env: Record<string, string>): string => {
  try {
    loadConfig("svc", schema, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("accepted");
};

describe("connection strings: the whole login masked", () => {
  it("spans and log errors: no user (redis://:p@), a `/` or an `@` in the password, the host kept", () => {
    const [a, b, c, d] = [pw(), pw(), pw(), pw()];
    const out = scrubString(`dial redis://:${a}@dragonfly:6379 failed; postgresql://app:${b}/x@pg:5432/db; postgresql://app:${c}@q@pg:5432/db; rediss://:${d}@h`);
    for (const v of [a, b, c, d]) expect(out).not.toContain(v);
    expect(out).not.toContain("@q@");
    expect(out).toContain("@dragonfly:6379 failed");
    expect(out).toContain("@pg:5432/db");
  });

  it("the log's err (a URL error carries its whole input) and an exported span's exception event", () => {
    const lines: string[] = [];
    const log = createLogger("svc", "info", { write: (s: string) => void lines.push(s) });
    const s = pw();
    let failure: unknown;
    try {
      new URL(`redis://:${s}@dragonfly:port`);
    } catch (e) {
      failure = e;
    }
    log.error({ err: failure }, "dragonfly url refused");
    expect(lines.join("")).toContain("ERR_INVALID_URL");
    expect(lines.join("")).not.toContain(s);
    const t = pw();
    const span = {
      name: "GET",
      attributes: {},
      links: [],
      status: { code: 2, message: `connect redis://:${t}@dragonfly:6379` },
      events: [{ name: "exception", time: [0, 0], attributes: { "exception.message": `redis://:${t}@dragonfly:6379 refused` } }],
      spanContext: () => ({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 1 }),
    } as unknown as ReadableSpan;
    expect(JSON.stringify(scrubSpan(span))).not.toContain(t);
  });

  it("the config's start error: every item of a refused list, and a password holding an `@`", () => {
    const [a, b, c] = [pw(), pw(), pw()];
    const list = refusal({ BROKERS: envList(Type.String({ pattern: "^[^:]+:[0-9]+$" })) }, { BROKERS: `u:${a}@h1:9092,u:${b}@h2:9092` });
    expect(list).toContain("BROKERS has an invalid item");
    for (const v of [a, b]) expect(list).not.toContain(v);
    const url = refusal({ STORE_URL: envUrl({ protocols: ["https"] }) }, { STORE_URL: `http://u:${c}@x@store:8123` });
    expect(url).toContain("STORE_URL must be a URL with protocol https");
    expect(url).not.toContain(c);
    expect(url).not.toContain("@x@");
  });

  it("/ready names a failed dependency's error with its login masked (arangojs names a URL with its login whole)", async () => {
    const [a, b] = [pw(), pw()];
    // The services package's arangojs (the root package does not depend on it).
    const { Database } = createRequire(join(__dirname, "..", "..", "services", "package.json"))("arangojs") as typeof import("../../services/node_modules/arangojs");
    const mod = defineService({
      name: "database-service", // requires postgres
      config: {},
      register({ addReadinessCheck }) {
        addReadinessCheck("graph", async () => {
          await new Database({ url: `http://graph:${a}@127.0.0.1:1` }).version();
        });
        addReadinessCheck("feed", async () => {
          throw new Error(`connect redis://:${b}@feed:6379 refused`);
        });
      },
    });
    const svc = await createService(mod, {
      env: { POSTGRES_URL: "postgresql://app:pw@127.0.0.1:1/db", READY_TIMEOUT_MS: "2000" },
      logStream: { write: () => undefined },
      defaultMetrics: false,
    });
    try {
      const r = await svc.app.inject({ url: "/ready" });
      expect(r.statusCode).toBe(503);
      const deps = JSON.parse(r.body).dependencies;
      expect(deps.graph.status).toBe("failed");
      expect(deps.feed.status).toBe("failed");
      expect(r.body).not.toContain(a);
      expect(r.body).not.toContain(b);
      expect(deps.graph.error).toContain("127.0.0.1:1");
    } finally {
      await svc.close();
    }
  });

  it("ARANGO_URL with a login is refused at start, naming the variables the login goes in, its password masked", () => {
    const a = pw();
    const message = refusal(datastoreEnv.arangodb, { ARANGO_URL: `http://graph:${a}@arango:8529` });
    expect(message).toContain("ARANGO_URL must not hold a login (set it in ARANGO_USER and ARANGO_PASSWORD)");
    expect(message).not.toContain(a);
    expect(refusal(datastoreEnv.arangodb, { ARANGO_URL: "ftp://arango:8529" })).toContain("ARANGO_URL must be a URL with protocol http or https");
    expect(loadConfig("svc", datastoreEnv.arangodb, { ARANGO_URL: "http://arango:8529/x?y=a@b" }).ARANGO_URL).toBe("http://arango:8529/x?y=a@b");
  });
});

describe("Authorization values in messages", () => {
  it("the Bearer scheme in any case is masked (RFC 9110 §11.1; `bearer x` was printed until session 63), Basic as written, the word basic in prose kept", () => {
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "BASIC"]) {
      const out = scrubString(`upstream said: invalid ${scheme} opaque-credential-7f3a in request`);
      expect(out, scheme).toBe(`upstream said: invalid ${scheme} [REDACTED] in request`);
    }
    expect(scrubString("a basic check failed")).toBe("a basic check failed");
  });
});
