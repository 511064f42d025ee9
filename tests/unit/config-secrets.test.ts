/**
 * Session 42's secrets hunt: the services' config schema is the source of truth for what is never
 * printed ("configuration loaded", the error of a refused value). The config log masked by name and
 * shape only where the schema's mark sat on the variable itself: a list whose items are marked
 * secret was printed whole, a refused item of a secret list was echoed, and a variable the schema
 * forgot to mark was printed whatever its name said.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, envEnum, envList, envUrl, isSecret, loadConfig, Type, datastoreEnv, type ConfigSchema } from "../../services/src/kit";
import { namedLikeACredential } from "../../services/src/kit/credential-words";
import { commonEnv } from "../../services/src/kit/service";
import { findService } from "../../services/src/catalog";
import { registry } from "../../services/src/registry";

/** Values of no credential name or shape: only the schema says they are secret. */
const A = "q7Lm2Vx9Rt4Kp8Zn";
const B = "w3Hs6Jd1Fb5Gc0Yx";

const refusal = (schema: ConfigSchema, env: Record<string, string>): string => {
  try {
    loadConfig("svc", schema, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("accepted");
};

describe("config log: the schema's secret mark decides", () => {
  it("a secret is said to be set, with its length, never printed, wherever the schema marks it", () => {
    const schema = {
      ROUTE_SEED: Type.String({ secret: true }),
      PEER_PINS: envList(Type.String({ secret: true, minLength: 4 })),
      MIRRORS: envList(Type.String(), { secret: true }),
      MODE: Type.Optional(Type.Union([Type.Literal(A), Type.Literal(B)], { secret: true })),
    };
    const described = describeConfig(loadConfig("svc", schema, { ROUTE_SEED: A, PEER_PINS: `${A},${B}`, MIRRORS: B, MODE: A }), schema);
    expect(described).toEqual({ ROUTE_SEED: "set (16 characters)", PEER_PINS: "set (2 items)", MIRRORS: "set (1 items)", MODE: "set (16 characters)" });
  });

  it("a refused item of a secret list is named by its position, never echoed", () => {
    const message = refusal({ PEER_PINS: envList(Type.String({ pattern: "^[a-z]+$" }), { secret: true }) }, { PEER_PINS: `abc,${A}` });
    expect(message).toContain("PEER_PINS has an invalid item #2");
    expect(message).not.toContain(A);
  });

  it("second net: a variable the schema forgot to mark, named like a credential, is not printed either", () => {
    const schema = { UPSTREAM_TOKEN: Type.String(), RELAY_PASSWORD: Type.Optional(Type.String({ minLength: 20 })), REFRESH_TOKEN_TTL_S: Type.Integer({ default: 900 }) };
    expect(describeConfig(loadConfig("svc", schema, { UPSTREAM_TOKEN: A }), schema)).toEqual({ UPSTREAM_TOKEN: "set (16 characters)", REFRESH_TOKEN_TTL_S: 900 });
    const message = refusal(schema, { UPSTREAM_TOKEN: A, RELAY_PASSWORD: B });
    expect(message).toContain("RELAY_PASSWORD must be at least 20 characters long");
    expect(message).not.toContain(B);
  });

  // Session 43's secrets hunt: session 42's net looked at text and list variables only.
  it("second net: a number that may be the credential (a PIN, a password declared a number) or a union with a text member is not printed; a TTL, a length, a switch, an enumeration are", () => {
    const schema = {
      ADMIN_PIN: Type.Integer(),
      RELAY_PASSWORD: Type.Optional(Type.Number()),
      UNLOCK_TOKEN: Type.Union([Type.Literal("off"), Type.String({ minLength: 8 })]),
      SESSION_STORES: envList(envEnum(["memory", "dragonfly"]), { default: ["memory"] }),
      SMTP_PASSWORD_2: Type.Optional(Type.Integer()),
      VAULT_PIN: Type.Optional(Type.Integer({ maximum: 9_999 })),
      REFRESH_TOKEN_TTL_S: Type.Integer({ default: 900 }),
      KAFKA_SESSION_TIMEOUT_MS: Type.Integer({ default: 30_000 }),
      PASSWORD_MIN_LENGTH: Type.Integer({ default: 12 }),
      API_KEY_MAX_FAILURES: Type.Integer({ default: 10 }),
      SESSION_COOKIE_SECURE: Type.Boolean({ default: true }),
      TOKEN_STORE: envEnum(["memory", "dragonfly"], { default: "memory" }),
      PINNED_RELEASE: Type.Integer({ default: 3 }),
    };
    const env = { ADMIN_PIN: "48213907", RELAY_PASSWORD: "73519264", UNLOCK_TOKEN: A, SMTP_PASSWORD_2: "61029384" };
    expect(describeConfig(loadConfig("svc", schema, env), schema)).toEqual({
      ADMIN_PIN: "set",
      RELAY_PASSWORD: "set",
      UNLOCK_TOKEN: "set (16 characters)",
      SMTP_PASSWORD_2: "set",
      SESSION_STORES: ["memory"],
      REFRESH_TOKEN_TTL_S: 900,
      KAFKA_SESSION_TIMEOUT_MS: 30_000,
      PASSWORD_MIN_LENGTH: 12,
      API_KEY_MAX_FAILURES: 10,
      SESSION_COOKIE_SECURE: true,
      TOKEN_STORE: "memory",
      PINNED_RELEASE: 3,
    });
    const message = refusal(schema, { ...env, ADMIN_PIN: "4821x907", VAULT_PIN: "55501234", UNLOCK_TOKEN: "q7Lm2V" });
    expect(message).toContain("ADMIN_PIN must be an integer");
    expect(message).toContain("VAULT_PIN must be <= 9999");
    expect(message).toContain("UNLOCK_TOKEN ");
    for (const v of ["4821x907", "55501234", "q7Lm2V"]) expect(message).not.toContain(v);
  });

  it("second net: a login inside a list item or a plain value is masked (the list of brokers, a user:password@host value)", () => {
    const schema = { UPSTREAMS: envList(Type.String()), RELAY: Type.String(), FEEDS: envList(envUrl()) };
    const described = describeConfig(loadConfig("svc", schema, { UPSTREAMS: `bob:${A}@h1:9092,h2:9092`, RELAY: `bob:${B}@relay:25`, FEEDS: `https://u:${A}@feed/x?key=${B}` }), schema);
    expect(described).toEqual({ UPSTREAMS: ["bob:***@h1:9092", "h2:9092"], RELAY: "bob:***@relay:25", FEEDS: ["https://u:***@feed/x?key=***"] });
  });
});

describe("every service's config schema marks its secrets", () => {
  /** What the Pulumi program sets from secrets (components/platform.ts secretValues, the datastores' connection variables). */
  const PROGRAM_SECRETS = [
    "JWT_SECRET", "BINANCE_API_KEY", "BINANCE_SECRET_KEY", "TELEGRAM_BOT_TOKEN", "SMTP_PASSWORD", "PAYMENT_PROCESSOR_API_KEY", "PAYMENT_WEBHOOK_SECRET",
    "POSTGRES_URL", "DRAGONFLY_URL", "CLICKHOUSE_PASSWORD", "ARANGO_PASSWORD", "WEAVIATE_API_KEY", "BOOTSTRAP_ADMIN_PASSWORD",
  ];

  it("marks every variable the program fills from a secret, and every variable named like a credential that may hold one", async () => {
    const unmarked: string[] = [];
    const check = (owner: string, schema: ConfigSchema) => {
      for (const [name, s] of Object.entries(schema)) {
        const named = namedLikeACredential(name, s);
        if ((named || PROGRAM_SECRETS.includes(name)) && !isSecret(s)) unmarked.push(`${owner}: ${name}`);
      }
    };
    for (const [store, schema] of Object.entries(datastoreEnv)) check(`datastore ${store}`, schema);
    for (const [name, load] of Object.entries(registry)) {
      const mod = await load();
      check(name, { ...commonEnv(findService(name)!), ...(mod.config ?? {}) });
    }
    expect(unmarked).toEqual([]);
  }, 120_000);
});
