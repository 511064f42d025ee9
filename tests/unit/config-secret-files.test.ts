/**
 * Secrets as files (session 44): on Docker a service's credentials are owner-only files under
 * /run/secrets, named by `<NAME>_FILE` (components/runtime/docker.ts), no longer container variables
 * that `docker inspect` shows. The kit reads `<NAME>_FILE` for every variable the schema marks secret.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadDatastoreConfig, Type } from "../../services/src/kit";
import type { ServiceDefinition } from "../../services/src/catalog";

const dir = mkdtempSync(join(tmpdir(), "secret-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string): string => {
  const p = join(dir, name);
  writeFileSync(p, content, { mode: 0o600 });
  return p;
};
const SECRET = "k3Jd9Qw2Lx7Vb4Np8Rt6Ys1Hz5Gm0Fc";

const refusal = (schema: Parameters<typeof loadConfig>[1], env: Record<string, string>): string => {
  try {
    loadConfig("svc", schema, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("accepted");
};

describe("config: a secret variable given as <NAME>_FILE", () => {
  const schema = { API_SECRET: Type.String({ secret: true, minLength: 16 }), PORT_HINT: Type.Optional(Type.String()) };

  it("is read from the file, one trailing newline trimmed (not other whitespace)", () => {
    expect(loadConfig("svc", schema, { API_SECRET_FILE: file("a", `${SECRET}\n`) }).API_SECRET).toBe(SECRET);
    expect(loadConfig("svc", schema, { API_SECRET_FILE: file("b", `${SECRET}\r\n`) }).API_SECRET).toBe(SECRET);
    expect(loadConfig("svc", schema, { API_SECRET_FILE: file("c", ` ${SECRET}`) }).API_SECRET).toBe(` ${SECRET}`);
  });

  it("the value read is validated like a variable's, and never echoed", () => {
    const message = refusal(schema, { API_SECRET_FILE: file("short", "abc\n") });
    expect(message).toContain("API_SECRET must be at least 16 characters long");
    expect(message).not.toContain("abc");
  });

  it("both set is a config error naming the variable", () => {
    const message = refusal(schema, { API_SECRET: SECRET, API_SECRET_FILE: file("d", SECRET) });
    expect(message).toContain("API_SECRET and API_SECRET_FILE are both set");
    expect(message).not.toContain(SECRET);
  });

  it("a missing, unreadable or empty file names the variable and the path, never a content", () => {
    expect(refusal(schema, { API_SECRET_FILE: join(dir, "absent") })).toContain(`API_SECRET_FILE: cannot read ${join(dir, "absent")} (ENOENT)`);
    expect(refusal(schema, { API_SECRET_FILE: dir })).toContain("API_SECRET_FILE: cannot read");
    expect(refusal(schema, { API_SECRET_FILE: file("empty", "\n") })).toContain("API_SECRET_FILE: ");
    expect(refusal(schema, { API_SECRET_FILE: file("empty2", "") })).toContain("is empty");
    if (process.getuid?.() !== 0) {
      const p = file("private", SECRET);
      chmodSync(p, 0o000);
      const message = refusal(schema, { API_SECRET_FILE: p });
      expect(message).toContain("(EACCES)");
      expect(message).not.toContain(SECRET);
    }
  });

  it("a value that is not a path (a credential pasted in by mistake) is not echoed", () => {
    const message = refusal(schema, { API_SECRET_FILE: SECRET });
    expect(message).toContain("API_SECRET_FILE must be an absolute path");
    expect(message).not.toContain(SECRET);
  });

  it("<NAME>_FILE of a variable the schema does not mark secret is refused, not silently ignored", () => {
    expect(refusal(schema, { API_SECRET: SECRET, PORT_HINT_FILE: file("e", "x") })).toContain("PORT_HINT_FILE is set, but PORT_HINT is not a secret variable");
  });

  it("an optional datastore given only as its primary variable's file is enabled, its URL read from the file", () => {
    const def = { name: "svc", requires: [], optional: ["postgres"] } as unknown as ServiceDefinition;
    const url = "postgresql://trading:p4ss@postgres:5432/ai_trading";
    const { configs, states } = loadDatastoreConfig(def, { POSTGRES_URL_FILE: file("pg", `${url}\n`) });
    expect(states.postgres).toEqual({ status: "enabled", required: false });
    expect(configs.postgres?.POSTGRES_URL).toBe(url);
    expect(loadDatastoreConfig(def, {}).states.postgres).toEqual({ status: "disabled" });
  });
});
