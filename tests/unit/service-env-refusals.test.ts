/**
 * Session 50's hunt through the services' environment: a value a deployer can set that the service
 * took silently (an empty value for a default, a port no broker has, a peer URL no call can use, live
 * trading without its keys, a log level pino does not know) stops it at start with a ConfigError naming
 * the variable, never with a stack trace or a silent default. No server: createService judges the
 * environment before any datastore is reached (tests/services/config-limits.test.ts does the same).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commonEnv, ConfigError, createService, datastoreEnv, type ConfigSchema, type TSchema } from "../../services/src/kit";
import { checkPeerUrls } from "../../services/src/kit/peers";
import { tracesEndpoint } from "../../services/src/kit/telemetry";
import { defaultServiceUrl, findService } from "../../services/src/catalog";
import { registry } from "../../services/src/registry";
import { configProblems } from "../helpers/config-problems";

/** Every service's whole schema (the kit's, its own, its datastores'), by service. */
async function schemas(): Promise<[string, ConfigSchema][]> {
  const out: [string, ConfigSchema][] = [];
  for (const [service, load] of Object.entries(registry)) {
    const def = findService(service)!;
    const stores = [...def.requires, ...def.optional].map((d) => datastoreEnv[d as keyof typeof datastoreEnv]);
    out.push([service, Object.assign({ ...commonEnv(def), ...((await load()).config ?? {}) }, ...stores)]);
  }
  return out;
}

const problems = configProblems;

const hasDefault = (s: TSchema) => s.default !== undefined && s.default !== "" && !(Array.isArray(s.default) && s.default.length === 0);

describe("an empty value where a default exists", () => {
  it("is refused for every variable of every service, naming it and its default (before: the default, silently)", async () => {
    let checked = 0;
    for (const [service, schema] of await schemas()) {
      for (const [name, s] of Object.entries(schema).filter(([, s]) => hasDefault(s))) {
        for (const empty of ["", "  "]) {
          const found = problems(service, schema, { [name]: empty }).filter((p) => p.startsWith(`${name} `));
          expect(found, `${service} ${name}=${JSON.stringify(empty)}`).toEqual([expect.stringMatching(new RegExp(`^${name} is set but empty: give it a value, or unset it for its default`))]);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
    const port = problems("api-gateway", commonEnv(findService("api-gateway")!), { PORT: "", LOG_LEVEL: "" });
    expect(port).toEqual([`PORT is set but empty: give it a value, or unset it for its default, ${findService("api-gateway")!.port}`, 'LOG_LEVEL is set but empty: give it a value, or unset it for its default, "info"']);
  });

  it("still means unset for an optional variable (nothing to stand in for it) and reads as missing for a required one", async () => {
    const um = findService("user-management")!;
    const own = { ...commonEnv(um), ...((await registry["user-management"]()).config ?? {}) };
    expect(problems("user-management", own, { TRUST_PROXY: "", JWT_SECRET: "s".repeat(64) })).toEqual([]);
    expect(problems("user-management", own, { JWT_SECRET: "" })).toEqual(["JWT_SECRET is required by user-management"]);
  });
});

describe("booleans and integers as a deployer writes them", () => {
  it("takes true/false/1/0/yes/no/on/off in any case and refuses anything else, for every boolean of every service", async () => {
    let checked = 0;
    for (const [service, schema] of await schemas()) {
      for (const [name] of Object.entries(schema).filter(([, s]) => s.type === "boolean")) {
        for (const good of ["yes", "0", "ON", " false "]) expect(problems(service, schema, { [name]: good }).filter((p) => p.startsWith(`${name} `)), `${service} ${name}=${good}`).toEqual([]);
        for (const bad of ["Y", "enabled", "2", "truee"]) {
          expect(problems(service, schema, { [name]: bad }).filter((p) => p.startsWith(`${name} `)), `${service} ${name}=${bad}`).toEqual([`${name} must be true or false (got "${bad}")`]);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });

  it("refuses an integer written as a decimal, in hex or with an exponent, or past a safe integer, for every integer of every service", async () => {
    for (const [service, schema] of await schemas()) {
      for (const [name] of Object.entries(schema).filter(([, s]) => s.type === "integer")) {
        for (const bad of ["1.5", "0x10", "1e3", "99999999999999999999", "ten"]) {
          expect(problems(service, schema, { [name]: bad }).filter((p) => p.startsWith(`${name} `)), `${service} ${name}=${bad}`).toEqual([`${name} must be an integer (got "${bad}")`]);
        }
      }
    }
  });
});

describe("ports", () => {
  it("KAFKA_BROKERS: a broker's port is 1-65535 (the pattern took 0 and 99999)", () => {
    const schema = datastoreEnv.redpanda;
    for (const bad of ["kafka:0", "kafka:65536", "kafka:99999", "a:9092,kafka:00"]) expect(problems("x", schema, { KAFKA_BROKERS: bad })[0], bad).toMatch(/^KAFKA_BROKERS has an invalid item "kafka:\d+" \(expected host:port, the port 1-65535\)/);
    for (const good of ["kafka:1", "kafka:9092", "redpanda-0.redpanda:65535", "a:9092, b:19092"]) expect(problems("x", schema, { KAFKA_BROKERS: good }), good).toEqual([]);
    expect(problems("x", commonEnv(findService("api-gateway")!), { PORT: "65536" })).toEqual(['PORT must be <= 65535 (got "65536")']);
  });
});

describe("datastore URLs with a login", () => {
  it("CLICKHOUSE_URL and WEAVIATE_URL refuse one, naming where the login goes, its password masked (as ARANGO_URL did)", () => {
    const password = "Pw-of-the-reader-2031";
    const cases: [keyof typeof datastoreEnv, string, string][] = [
      ["clickhouse", "CLICKHOUSE_URL", "CLICKHOUSE_USER and CLICKHOUSE_PASSWORD"],
      ["weaviate", "WEAVIATE_URL", "WEAVIATE_API_KEY"],
      ["arangodb", "ARANGO_URL", "ARANGO_USER and ARANGO_PASSWORD"],
    ];
    for (const [store, name, where] of cases) {
      const found = problems("x", datastoreEnv[store], { [name]: `http://reader:${password}@db.internal:8123` });
      expect(found, name).toEqual([`${name} must not hold a login (set it in ${where}) (got "http://reader:***@db.internal:8123")`]);
      expect(problems("x", datastoreEnv[store], { [name]: "https://db.internal:8443/" }), name).toEqual([]);
    }
  });
});

describe("HOST", () => {
  it("is a host name or an address to listen on, for every service (a stray space or a URL crashed the listen with a stack trace)", () => {
    for (const bad of ["0.0.0.0 ", "http://0.0.0.0", "0.0.0.0:8000"]) {
      expect(problems("api-gateway", commonEnv(findService("api-gateway")!), { HOST: bad })[0], bad).toMatch(/^HOST must match /);
    }
    for (const good of ["0.0.0.0", "127.0.0.1", "::", "::1", "localhost"]) expect(problems("api-gateway", commonEnv(findService("api-gateway")!), { HOST: good }), good).toEqual([]);
  });
});

describe("notification-service's relay", () => {
  it("SMTP_HOST is a host alone and SMTP_FROM one line with an address: a URL, a port or a login there was taken and failed at the first send", async () => {
    const own = (await registry["notification-service"]()).config!;
    for (const bad of ["smtp://smtp.example.com", "smtp.example.com:587", "alerts:pw-of-relay@smtp.example.com", "smtp example.com"]) {
      const found = problems("notification-service", own, { SMTP_HOST: bad });
      expect(found, bad).toEqual([expect.stringMatching(/^SMTP_HOST must match /)]);
      expect(found.join(""), bad).not.toContain("pw-of-relay");
    }
    for (const good of ["smtp.example.com", "10.20.30.40", "127.0.0.1", "::1", "relay-1"]) expect(problems("notification-service", own, { SMTP_HOST: good }), good).toEqual([]);
    for (const bad of ["alerts@example.com\r\nBcc: victim@example.org", "AI Trading"]) expect(problems("notification-service", own, { SMTP_FROM: bad })[0], bad).toMatch(/^SMTP_FROM must match /);
    expect(problems("notification-service", own, { SMTP_FROM: "AI Trading <alerts@example.com>" })).toEqual([]);
  });
});

describe("peer URLs (SERVICE_<NAME>_URL)", () => {
  const message = (env: NodeJS.ProcessEnv): string => {
    try {
      checkPeerUrls("api-gateway", env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    return "";
  };

  it("refuses no scheme, another scheme, a login, a query and an empty value, naming the variable and never the value", () => {
    const um = defaultServiceUrl(findService("user-management")!);
    expect(message({ SERVICE_USER_MANAGEMENT_URL: um.slice("http://".length) })).toBe(`Invalid configuration of api-gateway: SERVICE_USER_MANAGEMENT_URL must be a URL with protocol http or https, such as ${um}`);
    expect(message({ SERVICE_ML_PREDICTOR_URL: "ftp://ml" })).toContain("SERVICE_ML_PREDICTOR_URL must be a URL with protocol http or https");
    const login = message({ SERVICE_ORDER_MANAGEMENT_URL: "http://svc:hunter2-secret@order-management:8000" });
    expect(login).toBe("Invalid configuration of api-gateway: SERVICE_ORDER_MANAGEMENT_URL must not hold a login (fetch refuses to send a URL with credentials)");
    expect(message({ SERVICE_RISK_ANALYZER_URL: "http://risk-analyzer:8003/?token=x" })).toContain("SERVICE_RISK_ANALYZER_URL must not hold a query or a fragment");
    expect(message({ SERVICE_CENTRAL_HUB_URL: " " })).toBe(`Invalid configuration of api-gateway: SERVICE_CENTRAL_HUB_URL is set but empty: give the peer's base URL, or unset it for its default, "${defaultServiceUrl(findService("central-hub")!)}"`);
    expect(message({ SERVICE_USER_MANAGEMENT_URL: "x", SERVICE_ML_PREDICTOR_URL: "" }).split("; ")).toHaveLength(2);
  });

  it("takes http and https base URLs with a path, and is judged by createService with the rest of the environment", async () => {
    expect(message({ SERVICE_USER_MANAGEMENT_URL: "http://127.0.0.1:9/", SERVICE_ML_PREDICTOR_URL: "https://ml.internal/prefix" })).toBe("");
    const mod = await registry["api-gateway"]();
    await expect(createService(mod, { env: { LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: "user-management" }, defaultMetrics: false })).rejects.toThrow("SERVICE_USER_MANAGEMENT_URL must be a URL with protocol http or https");
  });
});

describe("trading-engine in live mode", () => {
  const env = { LOG_LEVEL: "silent", POSTGRES_URL: "postgres://u:p@127.0.0.1:1/db", KAFKA_BROKERS: "127.0.0.1:1", TRADING_MODE: "live" };

  it("without its Binance keys is a ConfigError naming them (before: a plain Error, printed with its stack trace)", async () => {
    const mod = await registry["trading-engine"]();
    const started = createService(mod, { env, defaultMetrics: false });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow("Invalid configuration of trading-engine: BINANCE_API_KEY is required by trading-engine with TRADING_MODE=live; BINANCE_SECRET_KEY is required by trading-engine with TRADING_MODE=live");
  });

  it("sends its signed orders over https only (http to a loopback stand-in aside): BINANCE_REST_URL http elsewhere is refused", async () => {
    const mod = await registry["trading-engine"]();
    await expect(createService(mod, { env: { ...env, BINANCE_REST_URL: "http://api.binance.com" }, defaultMetrics: false })).rejects.toThrow(
      'BINANCE_REST_URL must be a URL with protocol https (http only to a loopback host: localhost, 127.x.x.x, [::1]) (got "http://api.binance.com")',
    );
    const own = (await registry["trading-engine"]()).config!;
    expect(problems("trading-engine", own, { BINANCE_REST_URL: "http://127.0.0.1:8089" })).toEqual([]);
  });
});

describe("the tracing endpoint and the cron runner's LOG_LEVEL", () => {
  it("names the variable a bad tracing endpoint came from, never its value", () => {
    expect(() => tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" })).toThrow("OTEL_EXPORTER_OTLP_ENDPOINT must be an http or https URL");
    expect(() => tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x" })).toThrow("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http or https URL");
    // A collector's Basic-auth login is taken (hosted collectors use it; warnings scrub it).
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://u:s3cret@chain-debug:8030/v1/traces" })).toBe("http://u:s3cret@chain-debug:8030/v1/traces");
  });

  it("stops the cron runner with a usage message naming LOG_LEVEL (before: pino's unhandled rejection and its stack)", () => {
    const entry = join(__dirname, "..", "..", "services", "src", "cron.ts");
    for (const level of ["verbose", ""]) {
      const run = spawnSync(process.execPath, ["--import", "tsx", entry, "--name", "x", "--schedule", "0 3 * * *", "--", "true"], { env: { ...process.env, LOG_LEVEL: level }, encoding: "utf8", timeout: 60_000 });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(level === "" ? "cron runner: Invalid configuration of cron runner: LOG_LEVEL is set but empty" : "cron runner: Invalid configuration of cron runner: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent");
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
