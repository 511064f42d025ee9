/**
 * Mistaken and hostile values for every key the dev and prod stacks read (session 62): each refused
 * with a ConfigError naming the key and the stack, never another error (a stack trace), and never
 * echoing a password. The stacks are the real Pulumi.dev.yaml and Pulumi.prod.yaml.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { checkSecretConfig, checkSecretValues, ConfigError, configKeys, parseStackConfig, RawConfig, secretConfigKeys, shown } from "../../stacks/config";
import { keySchema, pulumiDeclarations, STRING_MAX_LENGTH } from "../../stacks/schema";
import { configError as error } from "../helpers/stack-config";

/** A stack's own settings as the program reads them (without the namespace, values as text). */
function stackFile(stack: string): RawConfig {
  const file = parse(fs.readFileSync(path.join(__dirname, "..", "..", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  // A map (serviceReplicas) reaches the program as JSON text.
  return Object.fromEntries(Object.entries(file.config).map(([k, v]) => [k.replace(/^trading:/, ""), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]));
}
const stacks = [["dev", stackFile("dev")], ["prod", stackFile("prod")]] as const;

/** The error parsing throws, which must be a ConfigError whose message names its key and the stack. */
function refusal(stack: string, raw: RawConfig): ConfigError {
  const e = error(stack, raw);
  expect(e.message).toMatch(new RegExp(`^Invalid configuration trading:${e.key} on stack '${stack}': `));
  return e;
}

const integerKeys = configKeys.filter((k) => keySchema(k).type === "integer");
const booleanKeys = configKeys.filter((k) => keySchema(k).type === "boolean");
/** Keys with a default an empty value would silently stand for. */
const defaultedKeys = configKeys.filter((k) => keySchema(k).default !== undefined && keySchema(k).default !== "");

describe("hostile values, key by key, on dev and prod (session 62)", () => {
  it("both stack files parse as they are", () => {
    for (const [stack, raw] of stacks) expect(() => parseStackConfig(stack, raw), stack).not.toThrow();
  });

  it("never throws anything but a ConfigError naming a key and the stack, whatever a key holds", () => {
    const values = ["abc", "1e3", "0x10", "-1", "1.5", "", "   ", "99999999999999999999", "Infinity", "NaN", "TRUE", "[1,2]", '{"a":1}', "512mb", "1Gi", "10s", "x".repeat(100_000), "a\u0000b", "é"];
    for (const [stack, base] of stacks) {
      for (const key of configKeys) {
        for (const value of values) {
          try {
            parseStackConfig(stack, { ...base, [key]: value });
          } catch (e) {
            expect(e, `${stack} ${key}=${value.slice(0, 20)}`).toBeInstanceOf(ConfigError);
            expect((e as Error).message).toMatch(new RegExp(`^Invalid configuration trading:[A-Za-z0-9]+ on stack '${stack}': `));
            expect((e as Error).message.length, `${stack} ${key}`).toBeLessThan(1_500);
          }
        }
      }
    }
  });

  it("judges a value of 100,000 characters of any key in linear time (a quadratic regular expression took 7 s a key)", () => {
    for (const value of ["x".repeat(100_000), "a-".repeat(50_000), `://${":".repeat(100_000)}`, "://a".repeat(25_000)]) {
      const started = performance.now();
      for (const key of configKeys) {
        try {
          parseStackConfig("prod", { ...stacks[1][1], [key]: value });
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
        }
      }
      expect(performance.now() - started, value.slice(0, 10)).toBeLessThan(20_000);
    }
  });

  it("refuses a non-integer for every integer key: hex, exponent, fraction, sign, other digits, out of range", () => {
    for (const [stack, base] of stacks) {
      for (const key of integerKeys) {
        for (const value of ["abc", "1e3", "0x10", "1.5", "+5", "١٢", "99999999999999999999", "512mb", "1Gi"]) {
          const e = refusal(stack, { ...base, [key]: value });
          expect(e.key, `${stack} ${key}=${value}`).toBe(key);
        }
        expect(refusal(stack, { ...base, [key]: "-1" }).key).toBe(key);
      }
    }
  });

  it("a size or duration written with a unit is told the unit the key's name carries", () => {
    const [stack, base] = stacks[1];
    expect(refusal(stack, { ...base, postgresStorageGi: "1Gi" }).message).toBe(
      "Invalid configuration trading:postgresStorageGi on stack 'prod': must be an integer, got '1Gi' (a plain number of GiB: the unit is in the key's name)",
    );
    expect(refusal(stack, { ...base, postgresMemoryGi: "512mb" }).message).toMatch(/got '512mb' \(a plain number of GiB: the unit is in the key's name\)$/);
    expect(refusal(stack, { ...base, rateLimitWindowMs: "10s" }).message).toMatch(/got '10s' \(a plain number of milliseconds: the unit is in the key's name\)$/);
    expect(refusal(stack, { ...base, prometheusRetentionDays: "2w" }).message).toMatch(/got '2w' \(a plain number of days: the unit is in the key's name\)$/);
    expect(refusal(stack, { ...base, replicas: "3x" }).message).toMatch(/got '3x' \(a plain number, without a unit\)$/);
  });

  it("refuses an integer with leading zeros: some readers take 010 for octal 8", () => {
    for (const [stack, base] of stacks) {
      for (const key of integerKeys) {
        for (const value of ["010", "007", "-01"]) {
          expect(refusal(stack, { ...base, [key]: value }).message, `${stack} ${key}=${value}`).toBe(
            `Invalid configuration trading:${key} on stack '${stack}': must be an integer without leading zeros (some readers take 010 for octal 8), got '${value}'`,
          );
        }
      }
    }
    expect(parseStackConfig("dev", { ...stacks[0][1], httpPort: "8081" }).docker.httpPort).toBe(8081);
    expect(parseStackConfig("dev", { ...stacks[0][1], replicas: "0" }).serviceReplicas["api-gateway"]).toBe(1);
  });

  it("refuses a key set blank where it has a default, instead of taking the default without a word", () => {
    for (const [stack, base] of stacks) {
      for (const key of defaultedKeys) {
        for (const value of ["", "  "]) {
          expect(refusal(stack, { ...base, [key]: value }).message, `${stack} ${key}`).toBe(
            `Invalid configuration trading:${key} on stack '${stack}': is set but blank: give it a value, or remove it for its default, ${JSON.stringify(keySchema(key).default)} (pulumi config rm trading:${key})`,
          );
        }
      }
    }
    // A key whose default is empty is optional: blank is unset.
    expect(parseStackConfig("dev", { ...stacks[0][1], smtpHost: "", storageClass: " ", imageSource: "" })).toMatchObject({ smtp: { host: undefined }, imageSource: "local" });
  });

  it("refuses a case variant of an enumerated or boolean value, saying which was meant", () => {
    for (const [stack, base] of stacks) {
      for (const [key, value, meant] of [["target", "Docker", "docker"], ["logLevel", "INFO", "info"], ["tradingMode", "Paper", "paper"], ["imagePullPolicy", "ifnotpresent", "IfNotPresent"], ["marketDataSource", "SYNTHETIC", "synthetic"]]) {
        expect(refusal(stack, { ...base, [key]: value }).message, `${stack} ${key}`).toMatch(new RegExp(`trading:${key} on stack '${stack}': must be one of .*, got '${value}' \\(values are case-sensitive: did you mean '${meant}'\\?\\)$`));
      }
      for (const key of booleanKeys) {
        for (const value of ["TRUE", "False"]) {
          expect(refusal(stack, { ...base, [key]: value }).message).toBe(
            `Invalid configuration trading:${key} on stack '${stack}': must be true or false, got '${value}' (values are case-sensitive: did you mean '${value.toLowerCase()}'?)`,
          );
        }
        for (const value of ["yes", "1", "on"]) expect(refusal(stack, { ...base, [key]: value }).message).toMatch(/must be true or false, got '[a-z0-9]+'$/);
      }
    }
  });

  it("refuses a URL with a password in any setting, never echoing the password", () => {
    const stringKeys = configKeys.filter((k) => keySchema(k).type === "string" || keySchema(k).anyOf !== undefined);
    for (const [stack, base] of stacks) {
      for (const key of stringKeys) {
        for (const value of ["smtp://relay:hunter2@mail.example.com:587", "https://ci:hunter2@registry.example.com/ai", "AI <https://a:hunter2@b>"]) {
          const e = refusal(stack, { ...base, [key]: value });
          expect(e.key, `${stack} ${key}`).toBe(key);
          expect(e.message).toMatch(/holds a URL with a password \(scheme:\/\/user:password@\.\.\.\).*the password is not shown here$/);
          expect(e.message).not.toContain("hunter2");
        }
      }
    }
    // A login without a password names no secret; an image pinned by tag and digest is no login.
    const pinned = `postgres:16.4@sha256:${"a".repeat(64)}`;
    expect(parseStackConfig("prod", { ...stacks[1][1], postgresImage: pinned }).datastores.postgres.image).toBe(pinned);
    // The second net: a value an error shows has its URL password masked.
    expect(shown("https://u:hunter2@h/x")).toBe("'https://u:***@h/x'");
  });

  it("refuses a host name ending in a number (smtpHost, ingressHost): resolvers read it as an IPv4 address, 127.1 as loopback", () => {
    for (const [stack, base] of stacks) {
      // 127.1, 2130706433 and 0x7f.1 are 127.0.0.1; 0xa9fea9fe is the metadata address 169.254.169.254; 010.0.0.1 is 8.0.0.1.
      for (const host of ["127.1", "2130706433", "0x7f.1", "0xa9fea9fe", "0251.0376.0251.0376", "010.0.0.1", "relay.0", "1"]) {
        expect(refusal(stack, { ...base, smtpHost: host }).message, `${stack} ${host}`).toBe(
          `Invalid configuration trading:smtpHost on stack '${stack}': '${host}' ends in a number, so it is no host name: resolvers and URL parsers read it as an IPv4 address in a short, octal or hex form (127.1 and 2130706433 are 127.0.0.1): give the relay's host name, or its address as four decimal octets (e.g. 192.0.2.25)`,
        );
        expect(refusal(stack, { ...base, ingressHost: host.toLowerCase() }).message, `${stack} ingressHost ${host}`).toMatch(/^Invalid configuration trading:ingressHost on stack '[a-z]+': '.*' ends in a number, so it is no host name: .*: give a DNS name$/);
      }
      expect(parseStackConfig(stack, { ...base, smtpHost: "10.0.0.25" }).smtp.host).toBe("10.0.0.25");
      expect(parseStackConfig(stack, { ...base, smtpHost: "smtp1.example.com", ingressHost: "trading1.example.com" }).kubernetes.ingressHost).toBe("trading1.example.com");
    }
  });
});

describe("registry and its login (session 62)", () => {
  it("refuses a registry port outside 1 to 65535", () => {
    for (const registry of ["registry.example.com:99999/ai", "registry.example.com:0/ai", "registry.example.com:08080"]) {
      expect(refusal("prod", { ...stacks[1][1], registry }).message, registry).toMatch(/^Invalid configuration trading:registry on stack 'prod': names the port '\d+', no TCP port \(1 to 65535\)/);
    }
    expect(parseStackConfig("prod", { ...stacks[1][1], registry: "registry.example.com:5000/ai" }).registry).toBe("registry.example.com:5000/ai");
  });

  it("refuses a registry user name holding ':' or white space (a password pasted after it would be sent as the password, and sits in plain text)", () => {
    for (const [stack, base] of stacks) {
      for (const user of ["ci:hunter2", "ci user"]) {
        const e = refusal(stack, { ...base, registryUsername: user });
        expect(e.key).toBe("registryUsername");
        expect(e.message).not.toContain("hunter2");
      }
    }
  });
});

describe("request ratios (session 62)", () => {
  it("refuses a ratio below a hundredth: the autoscaler's target, set against the request, overflowed the API server's int32 at 1e-9", () => {
    for (const key of ["cpuRequestRatio", "memoryRequestRatio"]) {
      for (const value of ["0.0000001", "0.000000001", "0.009"]) {
        expect(refusal("prod", { ...stacks[1][1], [key]: value }).message, `${key}=${value}`).toBe(
          `Invalid configuration trading:${key} on stack 'prod': must be at least 0.01 (a request a hundredth of the limit; below it the autoscaler's target, set against the request, stops meaning anything), got '${value}'`,
        );
      }
      for (const value of ["1e-3", "-0.5", "0x1", "50%", "1/2"]) expect(refusal("prod", { ...stacks[1][1], [key]: value }).message).toMatch(/must be a number greater than 0 and at most 1/);
      expect(parseStackConfig("prod", { ...stacks[1][1], [key]: "0.01" }).kubernetes[key as "cpuRequestRatio"]).toBe(0.01);
    }
  });
});

describe("the CLI hands the program Pulumi.yaml's declared defaults (session 63)", () => {
  /**
   * A stack's raw config as `pulumi preview` hands it: pulumi 3.248 passes every key Pulumi.yaml declares
   * with a default, the default's text for a key the stack does not set ("" for an empty default, "8080"
   * for an integer), in `config.get` and `runtime.allConfig` alike; an undeclared default stays absent.
   */
  function asTheCliHandsIt(raw: RawConfig): RawConfig {
    const declared = Object.fromEntries(
      Object.entries(pulumiDeclarations())
        .filter(([, d]) => d.default !== undefined)
        .map(([key, d]) => [key.replace(/^trading:/, ""), String(d.default)]),
    );
    return { ...declared, ...raw };
  }

  it("parses dev, prod and local-k8s alike with the defaults absent (as the tests hand them) or present (as the CLI does)", () => {
    for (const [stack, raw] of [...stacks, ["local-k8s", stackFile("local-k8s")] as const]) {
      expect(parseStackConfig(stack, asTheCliHandsIt(raw)), stack).toEqual(parseStackConfig(stack, raw));
    }
  });

  it("refuses certIssuer without ingressHost in both forms, with one message", () => {
    const { ingressHost: _unset, ...prod } = stacks[1][1];
    const expected = refusal("prod", prod).message;
    expect(expected).toMatch(/trading:ingressHost on stack 'prod': 'localhost' \(the default, which applies when the stack sets none\) is this machine's own name/);
    expect(refusal("prod", asTheCliHandsIt(prod)).message).toBe(expected);
  });
});

describe("every key against each hostile class, one check per class (session 63)", () => {
  const stringKeys = configKeys.filter((k) => typeof keySchema(k).maxLength === "number");

  it("bounds every string key (STRING_MAX_LENGTH unless the key names its own), naming the key and the bound", () => {
    expect(stringKeys.length).toBe(configKeys.filter((k) => keySchema(k).type === "string").length);
    for (const [stack, base] of stacks) {
      for (const key of stringKeys) {
        const max = keySchema(key).maxLength as number;
        expect(max, key).toBeLessThanOrEqual(STRING_MAX_LENGTH);
        const e = refusal(stack, { ...base, [key]: "a".repeat(max + 1) });
        expect(e.message, `${stack} ${key}`).toBe(`Invalid configuration trading:${key} on stack '${stack}': must be at most ${max} characters, got '${"a".repeat(80)}...' (${max + 1} characters)`);
      }
    }
  });

  it("refuses control characters, bidirectional controls and lone surrogates in every key, escaped in the message", () => {
    const hostile: [string, string][] = [["\u0000", "\\u0000"], ["\u001b", "\\u001b"], ["\u007f", "\\u007f"], ["\u009b", "\\u009b"], ["\u202e", "\\u202e"], ["\u2028", "\\u2028"], ["\ud800", "\\ud800"], ["\udc00", "\\udc00"]];
    for (const [stack, base] of stacks) {
      for (const key of configKeys) {
        for (const [c, escaped] of hostile) {
          const e = refusal(stack, { ...base, [key]: `a${c}b` });
          expect(e.key, `${stack} ${key} ${escaped}`).toBe(key);
          // Integer keys say what they take instead; every other key names the character.
          if (keySchema(key).type !== "integer") expect(e.message, `${stack} ${key} ${escaped}`).toContain(`must not contain control or invisible characters, got 'a${escaped}b'`);
        }
      }
    }
    // A surrogate pair (an emoji) is no lone surrogate.
    expect(parseStackConfig("prod", { ...stacks[1][1], smtpHost: "smtp.example.com", smtpFrom: "AI Trading \ud83d\udcc8 <alerts@example.com>" }).smtp.from).toContain("\ud83d\udcc8");
  });
});

describe("smtpUsername (session 63)", () => {
  const withRelay = { ...stacks[1][1], smtpHost: "smtp.example.com" };

  it("refuses control characters, lone surrogates and more than 255 characters (SASL's bound on a login), naming the key and the stack", () => {
    for (const [value, shownValue] of [["alerts\r\nRCPT TO:<x@example.com>", "'alerts\\u000d\\u000aRCPT TO:<x@example.com>'"], ["al\ud800erts", "'al\\ud800erts'"], ["al\u200eerts", "'al\\u200eerts'"]]) {
      expect(refusal("prod", { ...withRelay, smtpUsername: value }).message).toBe(`Invalid configuration trading:smtpUsername on stack 'prod': must not contain control or invisible characters, got ${shownValue}`);
    }
    expect(refusal("prod", { ...withRelay, smtpUsername: "a".repeat(256) }).message).toBe(`Invalid configuration trading:smtpUsername on stack 'prod': must be at most 255 characters, got '${"a".repeat(80)}...' (256 characters)`);
    expect(parseStackConfig("prod", { ...withRelay, smtpUsername: "a".repeat(255) }).smtp.username).toHaveLength(255);
    expect(parseStackConfig("prod", { ...withRelay, smtpUsername: "alerts@example.com" }).smtp.username).toBe("alerts@example.com");
  });

  it("takes blank for unset (no login), and refuses a login without a relay: e-mail is off, the login would be ignored", () => {
    for (const blank of ["", "   "]) expect(parseStackConfig("prod", { ...withRelay, smtpUsername: blank }).smtp.username).toBeUndefined();
    expect(refusal("prod", { ...stacks[1][1], smtpUsername: "alerts" }).message).toBe(
      "Invalid configuration trading:smtpUsername on stack 'prod': is set without smtpHost, and e-mail is off without a relay, so the login would be ignored: set the relay (pulumi config set trading:smtpHost <host>) or remove the login (pulumi config rm trading:smtpUsername)",
    );
  });

  it("goes with the smtpPassword secret both ways: notification-service logs in only with a user, and a user alone sends an empty password", () => {
    const config = (smtpUsername?: string) => parseStackConfig("prod", { ...withRelay, smtpUsername });
    expect(() => checkSecretConfig(config("alerts"), {})).toThrow(
      "Invalid configuration trading:smtpPassword on stack 'prod': is required together with smtpUsername (pulumi config set --secret trading:smtpPassword ...)",
    );
    expect(() => checkSecretConfig(config(" "), { smtpPassword: "set" })).toThrow(
      "Invalid configuration trading:smtpUsername on stack 'prod': is required together with the smtpPassword secret (pulumi config set trading:smtpUsername <login>)",
    );
    expect(() => checkSecretConfig(config("alerts"), { smtpPassword: "set" })).not.toThrow();
    expect(() => checkSecretConfig(config(), {})).not.toThrow();
  });
});

describe("the same classes in the credentials and the registry's host (session 63)", () => {
  it("bounds every credential's length, and refuses a control character in a PEM value besides its line breaks", () => {
    for (const key of secretConfigKeys) {
      const pem = key === "tlsCertificate" || key === "tlsPrivateKey";
      const max = pem ? 65_536 : 4_096;
      expect(() => checkSecretValues("prod", { [key]: "k".repeat(max + 1) }), key).toThrow(
        `Invalid configuration trading:${key} on stack 'prod': is ${max + 1} characters long, more than ${pem ? "a certificate chain or key" : "a credential"} takes (at most ${max}: a file's whole content pasted?)`,
      );
    }
    const certificate = "-----BEGIN CERTIFICATE-----\r\nMIIB\tAA==\n-----END CERTIFICATE-----\n";
    expect(() => checkSecretValues("prod", { tlsCertificate: certificate })).not.toThrow();
    for (const c of ["\u0000", "\u001b", "\u202e", "\ud800"]) {
      expect(() => checkSecretValues("prod", { tlsCertificate: certificate.replace("AA==", `A${c}A==`) })).toThrow(
        "Invalid configuration trading:tlsCertificate on stack 'prod': holds a control or invisible character besides line breaks, no part of a PEM block; set it again",
      );
    }
  });

  it("refuses a registry host ending in a number (127.1:5000 is loopback), as smtpHost and ingressHost", () => {
    for (const registry of ["127.1:5000/ai", "2130706433:5000/ai", "0x7f.1/ai", "registry.0/ai"]) {
      expect(refusal("prod", { ...stacks[1][1], registry }).message, registry).toMatch(/^Invalid configuration trading:registry on stack 'prod': names the host '.*', which ends in a number, so it is no host name: .*: give the registry's DNS name, or its address as four decimal octets$/);
    }
    // A Docker Hub namespace (no '.' or ':' in the first segment) is no host; four octets are an address.
    for (const registry of ["12345/ai", "10.0.0.5:5000/ai", "registry.example.com/ai", "localhost:5000/ai", "registry1.example.com/ai"]) {
      expect(parseStackConfig("prod", { ...stacks[1][1], registry }).registry, registry).toBe(registry);
    }
  });
});

describe("the object keys (serviceReplicas, serviceSettings) against the same classes (session 63)", () => {
  it("escapes a control or invisible character written as a JSON escape, in a key or a text, in the refusal", () => {
    // Parsed from JSON text, "\u202e" is the character itself (text()'s check saw six letters): each is refused as
    // no service, setting or integer, and the message printed U+202E as it is, reordering the line around it.
    for (const [key, value, expected] of [
      ["serviceSettings", '{"user-management": {"ACCESS_TOKEN_TTL_S\\u202e": 600}}', "'ACCESS_TOKEN_TTL_S\\u202e' is not a setting of user-management"],
      ["serviceSettings", '{"user-management\\u0085": {}}', "'user-management\\u0085' is not a service of the catalog"],
      ["serviceSettings", '{"user-management": {"ACCESS_TOKEN_TTL_S": "6\\u2066"}}', "got '6\\u2066'"],
      ["serviceReplicas", '{"api-gateway\\ud800": 2}', "'api-gateway\\ud800' is not a service of the catalog"],
    ]) {
      const message = refusal("prod", { ...stacks[1][1], [key]: value }).message;
      expect(message, value).toContain(expected);
      expect(message, value).not.toMatch(/[\u007f-\u009f\u2066\u202e]|[\ud800-\udfff]/);
    }
  });

  it("takes a service's own settings only: __proto__, constructor and toString found Object.prototype's and bounded nothing", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      expect(refusal("prod", { ...stacks[1][1], serviceSettings: `{"user-management": {"${name}": 1}}` }).message, name).toMatch(
        new RegExp(`^Invalid configuration trading:serviceSettings on stack 'prod': '${name}' is not a setting of user-management the stack sets \\(its settings: `),
      );
    }
    expect(parseStackConfig("prod", { ...stacks[1][1], serviceSettings: '{"user-management": {"ACCESS_TOKEN_TTL_S": 600}}' }).serviceSettings).toEqual({ "user-management": { ACCESS_TOKEN_TTL_S: 600 } });
  });
});

describe("leading zeros in every number a key holds, not only the integer keys (session 63)", () => {
  it("refuses them in notifyWebhookPorts and the request ratios, as in the integer keys; 0.5 is no leading zero", () => {
    const [stack, base] = stacks[1];
    expect(refusal(stack, { ...base, notifyWebhookPorts: "443,08443" }).message).toBe(
      "Invalid configuration trading:notifyWebhookPorts on stack 'prod': '08443' must be a port without leading zeros (some readers take 010 for octal 8)",
    );
    for (const key of ["cpuRequestRatio", "memoryRequestRatio"]) {
      for (const value of ["01", "00.5"]) {
        expect(refusal(stack, { ...base, [key]: value }).message).toBe(`Invalid configuration trading:${key} on stack 'prod': must be a number without leading zeros (some readers take 010 for octal 8), got '${value}'`);
      }
      expect(parseStackConfig(stack, { ...base, [key]: "0.5" }).kubernetes[key as "cpuRequestRatio"]).toBe(0.5);
    }
    expect(parseStackConfig(stack, { ...base, notifyWebhookPorts: "443,8443" }).notifyWebhookPorts).toEqual([443, 8443]);
  });
});
