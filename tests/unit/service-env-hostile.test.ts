/**
 * Session 62: hostile environment values a service reads at start (kit/config.ts). Each is a ConfigError
 * whose message names the service and the variable (main.ts logs that message alone, as one JSON line,
 * no stack trace), never echoes a password or a secret, and stays short whatever the value's length.
 * No server: loadServiceConfig judges the environment before any datastore is reached.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, Type } from "../../services/src/kit";
import { loadServiceConfig } from "../../services/src/kit/service-config";
import { findService } from "../../services/src/catalog";

const hub = findService("central-hub")!;
/** A valid environment of central-hub (its one datastore) with `env` over it. */
const valid = { DRAGONFLY_URL: "redis://dragonfly:6379" };

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadServiceConfig(hub, {}, { ...valid, ...env });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/^Invalid configuration of central-hub: /);
    return e as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env).slice(0, 100)}`);
}

describe("hostile service environment values (session 62)", () => {
  it("a valid environment loads", () => {
    expect(loadServiceConfig(hub, {}, valid).common.PORT).toBe(hub.port);
  });

  it("refuses PORT in hex, with spaces, an exponent, a fraction, a sign or other digits, naming the service and the variable", () => {
    for (const port of ["0x50", " 80", "80 ", "1e3", "80.0", "+80", "٨٠", "99999999999999999999999"]) {
      expect(refusal({ PORT: port }).message, port).toBe(`Invalid configuration of central-hub: PORT must be an integer (got "${port}")`);
    }
    expect(refusal({ PORT: "0" }).message).toBe('Invalid configuration of central-hub: PORT must be >= 1 (got "0")');
  });

  it("refuses a padded number as it refuses a padded enum (a stray space is a quoting mistake); booleans stay loose (session 50)", () => {
    expect(refusal({ SHUTDOWN_TIMEOUT_MS: "5000 " }).message).toBe('Invalid configuration of central-hub: SHUTDOWN_TIMEOUT_MS must be an integer (got "5000 ")');
    expect(refusal({ LOG_LEVEL: " info" }).message).toContain('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got " info")');
    expect(loadServiceConfig(hub, {}, { ...valid, TRUST_PROXY_GLOBAL_IPV6: " true " }).common.TRUST_PROXY_GLOBAL_IPV6).toBe(true);
  });

  it("refuses LOG_LEVEL in capitals, naming the levels", () => {
    expect(refusal({ LOG_LEVEL: "TRACE" }).message).toBe('Invalid configuration of central-hub: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "TRACE")');
  });

  it("never echoes the password of a URL set in a variable that is no URL, whichever check refuses it", () => {
    const envs: Record<string, string>[] = [{ HOST: "http://ops:hunter2@10.0.0.1" }, { TRUST_PROXY: "http://ops:hunter2@10.0.0.1" }, { LOG_LEVEL: "https://ops:hunter2@logs.example.com" }];
    for (const env of envs) {
      const e = refusal(env);
      expect(e.message, JSON.stringify(env)).toContain("ops:***@");
      expect(e.message).not.toContain("hunter2");
      for (const problem of e.problems) expect(problem).not.toContain("hunter2");
    }
  });

  it("never echoes a secret's value", () => {
    const schema = { HUB_TOKEN: Type.String({ secret: true, minLength: 64 }), HUB_KEY: Type.String({ secret: true, pattern: "^[a-f0-9]+$" }) };
    try {
      loadConfig("central-hub", schema, { HUB_TOKEN: "hunter2", HUB_KEY: "https://u:hunter2@h" });
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect((e as Error).message).toBe("Invalid configuration of central-hub: HUB_TOKEN must be at least 64 characters long; HUB_KEY must match /^[a-f0-9]+$/");
    }
  });

  it("an over-long value gives a short message, in linear time, with no part of a password", () => {
    for (const [name, value] of [
      ["HOST", "x".repeat(100_000)],
      ["PORT", "//a:".repeat(25_000)],
      ["LOG_LEVEL", `https://ops:${"p".repeat(100_000)}@h`],
      ["TRUST_PROXY", "x".repeat(100_000)],
      ["TRUST_PROXY", `http://ops:hunter2@h,${"y".repeat(100_000)}`],
    ] as const) {
      const started = performance.now();
      const e = refusal({ [name]: value });
      expect(performance.now() - started, name).toBeLessThan(5_000);
      expect(e.message.length, name).toBeLessThan(1_200);
      expect(e.message).toContain(name);
      expect(e.message).not.toMatch(/hunter2|p{20}/);
    }
    expect(refusal({ HOST: "x".repeat(100_000) }).message).toMatch(/HOST must match .* \(got 100000 characters\)$/);
  });
});
