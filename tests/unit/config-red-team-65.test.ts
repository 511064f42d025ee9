/**
 * Red team round 65 on the stack configuration: values a hostile or careless user puts in a stack's config, each
 * either taken (and then what the program runs) or refused before any resource exists by a ConfigError naming the
 * key and the stack. Pure functions only (parseStackConfig, checkConfigKeys, checkSecretValues): no engine.
 * Cases of config.test.ts, config-hostile-values, config-refusals, config-exposure and config-repeated-entries are
 * not repeated. Found and fixed here (before: taken, and wrong at run time or silent):
 * - a dockerSubnet too narrow for the stack's containers (/28, /30, /32: the last containers fail after the rest exist);
 * - an image digest in upper-case hex (go-digest refuses it at the pull; catalog/images.ts, the pack's rule too);
 * - a credential by its issuer's shape (PEM key, GitHub/Stripe/AWS/Telegram/... tokens, a JWT) in a plain setting;
 * - a registry at the cloud metadata address, link-local, unspecified or multicast (the push sends the login there);
 * - a prod stack (prod, prod-*) on the Docker target (dev's settings copied);
 * - replicas for a service the stack does not deploy; an empty entry in disabledServices;
 * - a misspelt service name (disabledServices, serviceReplicas, serviceSettings) or serviceSettings variable now
 *   gets a did-you-mean, as a misspelt key does.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { unpinnedReason } from "../../catalog/images";
import { checkConfigKeys, checkPlainConfigValues, checkSecretValues, ConfigError, credentialShapeIn, dockerContainerCount, parseStackConfig, RawConfig } from "../../stacks/config";
import { configError, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

/** A stack file's settings as the CLI hands them to the program (a map as JSON text, the rest as text). */
function stackFile(stack: string): RawConfig {
  const file = parse(fs.readFileSync(path.join(__dirname, "..", "..", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config).map(([k, v]) => [k.replace(/^trading:/, ""), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]));
}
const devFile = stackFile("dev");
const prodFile = stackFile("prod");
const localK8sFile = stackFile("local-k8s");

/** The refusal of `raw` on `stack`, which must name `key` and the stack at the start of its message. */
function refused(stack: string, raw: RawConfig, key: string): ConfigError {
  const e = configError(stack, raw);
  expect(e.key).toBe(key);
  expect(e.message.startsWith(`Invalid configuration trading:${key} on stack '${stack}': `), e.message).toBe(true);
  return e;
}

function keysRefusal(stack: string, keys: string[], encrypted: string[] = []): ConfigError {
  try {
    checkConfigKeys(stack, keys, encrypted);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${keys.join(", ")}`);
}

describe("values of the wrong type", () => {
  it.each([
    ["publishAdminPorts", "no"],
    ["grafanaEnabled", "off"],
    ["exposeDatastores", "y"],
    ["trustGlobalIPv6Proxies", "n"],
    ["prometheusEnabled", "0"],
    ["traefikMiddlewares", "null"],
    ["weaviateEnabled", "[true]"],
  ])("boolean %s = %j (a YAML 1.1 boolean, a number, a null's text, a list) is refused", (key, value) => {
    expect(refused("dev", { ...docker, [key]: value }, key).message).toMatch(/must (be true or false|be a single value)/);
  });

  it.each([
    ["replicas", "two"],
    ["httpPort", "2024-01-01 00:00:00 +0000 UTC"],
    ["postgresStorageGi", "20.0"],
    ["smtpPort", "+587"],
    ["prometheusRetentionDays", "15d"],
    ["rateLimitWindowMs", "9e5"],
  ])("integer %s = %j (a word, the CLI's text of a YAML date, a float, a sign, a unit, an exponent) is refused", (key, value) => {
    expect(refused("dev", { ...docker, [key]: value }, key).message).toMatch(/must be an integer/);
  });

  it.each([
    ["serviceReplicas", "[2, 3]", /must be an object/],
    ["serviceReplicas", "null", /must be an object/],
    ["serviceReplicas", "api-gateway=2", /must be a YAML\/JSON object/],
    ["serviceSettings", '["user-management"]', /must be an object/],
    ["serviceSettings", '{"user-management": [600]}', /settings of 'user-management' must be an object of variables/],
    ["serviceSettings", '{"user-management": {"ACCESS_TOKEN_TTL_S": "600"}}', /must be an integer between .* got '600'/],
  ])("map %s = %j (a list, null, a scalar, a list inside, a number as text) is refused", (key, value, message) => {
    expect(refused("prod", { ...k8s, [key]: value }, key).message).toMatch(message);
  });

  it.each([
    ["target", "1"],
    ["imageSource", "true"],
    ["tradingMode", "[paper]"],
    ["logLevel", '{"level": "info"}'],
  ])("enumerated %s = %j is refused", (key, value) => {
    refused("prod", { ...k8s, [key]: value }, key);
  });

  it("a YAML null reaches the program as \"\" (the CLI's text, checked with pulumi 3.248): blank, refused where the key has a default", () => {
    expect(refused("dev", { ...docker, httpPort: "" }, "httpPort").message).toMatch(/is set but blank/);
    expect(parseStackConfig("prod", { ...k8s, storageClass: "" }).kubernetes.storageClass).toBeUndefined();
  });
});

describe("sizes and counts at their edges", () => {
  it.each([
    ["replicas", "-1"],
    ["replicas", "51"],
    ["postgresStorageGi", "0"],
    ["clickhouseStorageGi", "16385"],
    ["redpandaStorageGi", "1e309"],
    ["postgresMemoryGi", "1Ei"],
    ["postgresMemoryGi", "0"],
    ["postgresMemoryGi", "1025"],
    ["postgresMaxConnections", "-5"],
    ["dockerPidsLimitJob", "15"],
    ["prometheusRetentionDays", "3651"],
    ["rateLimitWindowMs", "999"],
  ])("%s = %j is refused", (key, value) => {
    refused("prod", { ...k8s, [key]: value }, key);
  });

  it.each(["0", "0.0", "-0.5", "Infinity", "NaN", "1e-3", "0.001", "1.01"])("cpuRequestRatio %j (CPU 0, negative, not a number, below a hundredth, above 1) is refused", (value) => {
    refused("prod", { ...k8s, cpuRequestRatio: value }, "cpuRequestRatio");
  });

  it.each([
    ['{"api-gateway": 0}'],
    ['{"api-gateway": -1}'],
    ['{"api-gateway": 2.5}'],
    ['{"api-gateway": 1e309}'],
    ['{"api-gateway": 1000000}'],
    ['{"api-gateway": "3"}'],
    ['{"api-gateway": true}'],
    ['{"api-gateway": null}'],
  ])("serviceReplicas %s (0, negative, fraction, infinite, huge, text, boolean, null) is refused", (value) => {
    expect(refused("prod", { ...k8s, serviceReplicas: value }, "serviceReplicas").message).toMatch(/replicas of 'api-gateway' must be an integer between 1 and \d+ \(its catalog maximum\)/);
  });

  it("replicas 0 is the target's default, and huge replicas are capped by the catalog's maximum (singletons stay single)", () => {
    expect(parseStackConfig("prod", { ...k8s, replicas: "0" }).serviceReplicas["api-gateway"]).toBeGreaterThanOrEqual(2);
    expect(parseStackConfig("dev", { ...docker, replicas: "0" }).serviceReplicas["api-gateway"]).toBe(1);
    const big = parseStackConfig("prod", { ...k8s, replicas: "50", postgresMemoryGi: "64" });
    expect(big.serviceReplicas["trading-engine"]).toBe(1);
  });

  it.each([["192.168.7.0/28"], ["172.28.0.0/30"], ["172.28.0.0/32"], ["10.9.9.0/27"]])(
    "dockerSubnet %s holds fewer addresses than dev's containers: refused with both counts (was taken; the last containers failed after the rest were made)",
    (dockerSubnet) => {
      const e = refused("dev", { ...devFile, dockerSubnet }, "dockerSubnet");
      const containers = dockerContainerCount(parseStackConfig("dev", devFile).services, parseStackConfig("dev", devFile).serviceReplicas, parseStackConfig("dev", devFile).datastores, true, false);
      expect(e.message).toContain(`this stack runs ${containers} containers on it`);
      expect(e.message).toMatch(/no available IPv4 addresses/);
    },
  );

  it("counts dev's containers as the program makes them (31: 22 services, 5 datastores, Prometheus, the edge, the migration and retraining jobs) and takes a /26", () => {
    const dev = parseStackConfig("dev", devFile);
    expect(dockerContainerCount(dev.services, dev.serviceReplicas, dev.datastores, dev.monitoring.prometheus, dev.monitoring.grafana)).toBe(31);
    expect(parseStackConfig("dev", { ...devFile, dockerSubnet: "172.28.0.0/26" }).docker.subnet).toBe("172.28.0.0/26");
    // More replicas need more room: three of each service on a /26 no longer fit.
    expect(refused("dev", { ...devFile, dockerSubnet: "172.28.0.0/26", replicas: "3", postgresMemoryGi: "8" }, "dockerSubnet").message).toMatch(/holds 61 container addresses/);
  });
});

describe("CIDRs and addresses: malformed, too wide, IPv6 forms", () => {
  it.each(["10.244.0.0/33", "10.244.0.0/-1", "10.244.0.0/", "/16", "10.244.0/16", "10.244.0.0.0/16", "[fd00::1]", "fd00::/129", "10.244.0.0/16/16", "10.244.0.0\\16"])(
    "trustedProxies %j is refused",
    (trustedProxies) => {
      refused("prod", { ...k8s, trustedProxies }, "trustedProxies");
    },
  );

  it.each(["::10.0.0.1", "0.0.0.0/0", "::/0", "ff02::1", "224.0.0.0/16", "8.8.0.0/16"])("trustedProxies %j (IPv4-compatible IPv6, everything, multicast, public) is refused", (trustedProxies) => {
    refused("prod", { ...k8s, trustedProxies }, "trustedProxies");
  });

  it("takes an IPv6 edge address in capitals and a /128, as the gateway matches them", () => {
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: "FD00::1, fd00:10::5/128" }).trustedProxies).toBe("FD00::1, fd00:10::5/128");
  });

  it.each(["fd00::/64", "0.0.0.0/0", "172.28.0.0", "172.28.0.0/24,10.0.0.0/24", "172.028.0.0/24"])("dockerSubnet %j (IPv6, everything, no prefix, a list, a zero-padded octet) is refused", (dockerSubnet) => {
    refused("dev", { ...docker, dockerSubnet }, "dockerSubnet");
  });

  it.each(["::1", "::", "127.0.0.1:15432", "localhost"])("adminBindAddress %j (IPv6, with a port, a name) is refused", (adminBindAddress) => {
    refused("dev", { ...docker, adminBindAddress }, "adminBindAddress");
  });
});

describe("host names", () => {
  it.each(["trading.example.com:443", "https://trading.example.com", "trading_app.example.com", "-trading.example.com", `${"a".repeat(64)}.example.com`, "[::1]", "fd00::1", "trading..example.com"])(
    "ingressHost %j is refused",
    (ingressHost) => {
      refused("prod", { ...k8s, ingressHost }, "ingressHost");
    },
  );

  it.each(["[::1]", "fd00::25", "smtp.example.com:587", "user@smtp.example.com", "smtp.example.com/relay", "smtp .example.com"])("smtpHost %j (IPv6, a port, a login, a path, a space) is refused", (smtpHost) => {
    refused("prod", { ...k8s, smtpHost }, "smtpHost");
  });
});

describe("ports colliding between the edge, the datastores and the services", () => {
  it.each([
    ["httpPort", "16379"],
    ["httpsPort", "18529"],
    ["httpPort", "19092"],
    ["httpsPort", "13000"],
  ])("%s %s, a datastore's admin host port on the same loopback address, is refused", (key, port) => {
    // Redpanda's admin port is published by Redpanda's server only (upstream), not by its offline stand-in (config-red-team-65b).
    expect(refused("dev", { ...docker, imageSource: "upstream", [key]: port }, key).message).toMatch(/must differ from \w+'s admin host port/);
  });

  it.each([["5432"], ["6379"], ["9092"], ["8123"], ["2379"], ["10250"]])("notifyWebhookPorts %s (a datastore's or the cluster's port) is refused", (notifyWebhookPorts) => {
    expect(refused("prod", { ...k8s, notifyWebhookPorts }, "notifyWebhookPorts").message).toMatch(/a datastore's or cluster service's/);
  });

  it("httpPort equal to httpsPort is refused whichever is set", () => {
    refused("dev", { ...docker, httpsPort: "8080" }, "httpsPort");
    refused("dev", { ...docker, httpPort: "8443" }, "httpsPort");
  });
});

describe("image references", () => {
  it.each([
    [`postgres@sha256:${"A".repeat(64)}`, /upper-case sha256 digest, which the engines refuse/],
    [`postgres:16.4@sha256:${"ABCDEF0123456789".repeat(4)}`, /upper-case sha256 digest/],
    [`postgres@sha256:${"a".repeat(63)}`, /malformed digest/],
    [`postgres@sha256:${"a".repeat(65)}`, /malformed digest/],
    [`postgres@sha512:${"a".repeat(128)}`, /malformed digest/],
    [`postgres@md5:${"a".repeat(32)}`, /malformed digest/],
    ["postgres:Latest", /floating tag "Latest"/],
    ["postgres:Stable", /floating tag/],
    ["docker.io/library/postgres", /has no tag/],
    ["Postgres:16", /not a valid image reference/],
    ["postgres::16", /not a valid image reference/],
  ])("postgresImage %j is refused", (postgresImage, message) => {
    expect(refused("prod", { ...k8s, postgresImage }, "postgresImage").message).toMatch(message);
  });

  it("takes a floating tag pinned by a lowercase digest (the digest is what runs), and a version tag", () => {
    const digest = `sha256:${"0123456789abcdef".repeat(4)}`;
    expect(parseStackConfig("prod", { ...k8s, postgresImage: `postgres:latest@${digest}` }).datastores.postgres.image).toBe(`postgres:latest@${digest}`);
    expect(parseStackConfig("prod", { ...k8s, redpandaImage: "docker.redpanda.com/redpandadata/redpanda:v24.2.4" }).datastores.redpanda.image).toBe("docker.redpanda.com/redpandadata/redpanda:v24.2.4");
  });

  it("the pack's definition is the same: an upper-case digest is not pinned", () => {
    expect(unpinnedReason(`nginx@sha256:${"F".repeat(64)}`)).toMatch(/upper-case/);
    expect(unpinnedReason(`nginx@sha256:${"f".repeat(64)}`)).toBeUndefined();
  });

  it.each(["Latest", "MAIN", "nightly", `0.1.0@sha256:${"a".repeat(64)}`, "0.1.0+build.7", ".0.1.0"])("servicesImageTag %j is refused", (servicesImageTag) => {
    refused("prod", { ...k8s, servicesImageTag }, "servicesImageTag");
  });
});

describe("duplicate keys in different casing, and misspelt keys and names: refused with a did-you-mean", () => {
  it.each([
    [["trading:replicas", "trading:Replicas"], "trading:Replicas on stack 'prod': is not a setting of this program", "did you mean trading:replicas?"],
    [["trading:ingressHost", "trading:INGRESSHOST"], "trading:INGRESSHOST on stack 'prod'", "did you mean trading:ingressHost?"],
    [["trading:dockerSubnets"], "trading:dockerSubnets on stack 'prod'", "did you mean trading:dockerSubnet?"],
    [["trading:certIssure"], "trading:certIssure on stack 'prod'", "did you mean trading:certIssuer?"],
    [["trading:servicesImageTags"], "trading:servicesImageTags on stack 'prod'", "did you mean trading:servicesImageTag?"],
    [["trading:exposeDatastore"], "trading:exposeDatastore on stack 'prod'", "did you mean trading:exposeDatastores?"],
    [["trading:trustedProxy"], "trading:trustedProxy on stack 'prod'", "did you mean trading:trustedProxies?"],
    [["trading:target", "Trading:target"], "Trading:target on stack 'prod'", "did you mean trading:target?"],
  ])("%j", (keys, where, hint) => {
    const e = keysRefusal("prod", keys);
    expect(e.message).toContain(where);
    expect(e.message).toContain(hint);
  });

  it("a misspelt credential set as a secret is refused too, with the credential meant", () => {
    expect(keysRefusal("prod", ["trading:binanceApiKeys"], ["trading:binanceApiKeys"]).message).toContain("did you mean trading:binanceApiKey?");
  });

  it.each([
    ["disabledServices", "chain-debug,revenue-analytic", "'revenue-analytic' is not a service of the catalog: did you mean 'revenue-analytics'?"],
    ["serviceReplicas", '{"api-gateway": 2, "API-GATEWAY": 3}', "'API-GATEWAY' is not a service of the catalog: did you mean 'api-gateway'?"],
    ["serviceReplicas", '{"portfolio-manger": 2}', "'portfolio-manger' is not a service of the catalog: did you mean 'portfolio-manager'?"],
    ["serviceSettings", '{"user-managment": {"ACCESS_TOKEN_TTL_S": 600}}', "'user-managment' is not a service of the catalog: did you mean 'user-management'?"],
    ["serviceSettings", '{"user-management": {"ACCESS_TOKEN_TTL_S": 600, "access_token_ttl_s": 700}}', "(did you mean 'ACCESS_TOKEN_TTL_S'?)"],
    ["serviceSettings", '{"api-gateway": {"PROXY_TIMEOUT": 10000}}', "(did you mean 'PROXY_TIMEOUT_MS'?)"],
  ])("%s %s names what was meant (before: no hint)", (key, value, message) => {
    expect(refused("prod", { ...k8s, [key]: value }, key).message).toContain(message);
  });

  it("gives no hint for a name close to nothing", () => {
    expect(refused("prod", { ...k8s, serviceReplicas: '{"frontend": 2}' }, "serviceReplicas").message).not.toContain("did you mean");
  });
});

describe("lists and maps that would apply to nothing", () => {
  it.each([",,", "chain-debug,", ",chain-debug", "chain-debug,,revenue-analytics"])("disabledServices %j with an empty entry is refused (was read as fewer names)", (disabledServices) => {
    expect(refused("dev", { ...docker, disabledServices }, "disabledServices").message).toMatch(/has an empty entry/);
  });

  it("refuses replicas for a service the stack does not deploy (was ignored without a word), as serviceSettings does", () => {
    const raw = { ...k8s, disabledServices: "chain-debug,revenue-analytics", serviceReplicas: '{"revenue-analytics": 3}' };
    expect(refused("prod", raw, "serviceReplicas").message).toBe(
      "Invalid configuration trading:serviceReplicas on stack 'prod': 'revenue-analytics' is not deployed (disabledServices, or a datastore it requires is off): its replicas would apply to nothing; remove it from trading:serviceReplicas",
    );
    expect(parseStackConfig("prod", { ...raw, serviceReplicas: '{"api-gateway": 3}' }).serviceReplicas["api-gateway"]).toBe(3);
  });
});

describe("secrets given in plain text", () => {
  const github = `ghp_${"Z9y8X7w6V5u4T3s2R1q0".repeat(2)}`;
  const aws = "AKIAZ7Q2M4N6P8R0T1V3";
  const stripe = `sk_live_${"4eC39HqLyjWDarjtT1zdp7dc".repeat(1)}`;
  const telegram = `1234567890:AA${"Hx7Kq2Lm9Np4Rs6Tv8Wy0Za1Bc3De5Fgh"}`;
  const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.${"s1gnatureS1gnature".repeat(2)}`;
  const pem = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC${"q".repeat(40)}\n-----END PRIVATE KEY-----`;

  it.each([
    ["registryUsername", github, "a GitHub token"],
    ["smtpUsername", aws, "an AWS access key ID"],
    ["smtpFrom", `Alerts ${stripe} <alerts@example.com>`, "a card processor's (Stripe) key or webhook secret"],
    ["ingressControllerPodLabels", `token=${telegram}`, "a Telegram bot token"],
    ["storageClass", pem, "a PEM private key"],
    ["certIssuer", jwt, "a signed JSON Web Token"],
    ["serviceSettings", `{"${github}": {}}`, "a GitHub token"],
    ["smtpHost", `AIza${"SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".slice(0, 35)}`, "a Google API key"],
  ])("%s holding %s is refused as a credential, the value never shown", (key, value, kind) => {
    const base = key === "smtpUsername" ? { ...k8s, smtpHost: "smtp.example.com" } : k8s;
    const e = refused("prod", { ...base, [key]: value }, key);
    expect(e.message).toContain(`holds what looks like a credential (${kind})`);
    expect(e.message).toContain("the value is not shown here");
    for (const part of [value.slice(0, 12), value.slice(-12)]) expect(e.message).not.toContain(part);
  });

  it("keeps ordinary values that share a prefix or a shape with a credential", () => {
    for (const value of ["ghp_short", "sk_live_", "AKIA", "eyJ.eyJ.x", "123:AAx", "ci-deployer", "robot$ai-trading+push"]) expect(credentialShapeIn(value), value).toBeUndefined();
    expect(parseStackConfig("prod", { ...k8s, registryUsername: "robot$ai-trading+push" }).registryUsername).toBe("robot$ai-trading+push");
  });

  it("judges a value of 100,000 characters built of the shapes' prefixes in linear time", () => {
    for (const prefix of ["glpat-", "eyJ", "eyJa.", "-----BEGIN ", "1234567890:", "AKIA", "ghp_", "sk_live_x", "xoxb-"]) {
      const value = prefix.repeat(Math.ceil(100_000 / prefix.length)).slice(0, 100_000);
      const start = performance.now();
      credentialShapeIn(value);
      expect(performance.now() - start, prefix).toBeLessThan(500);
    }
  });

  it("a credential key set without --secret is refused: smtpPassword and registryPassword in plain text", () => {
    for (const key of ["trading:smtpPassword", "trading:registryPassword", "trading:paymentWebhookSecret"]) {
      expect(keysRefusal("prod", [key]).message).toContain("is a credential stored in plain text");
    }
  });
});

describe("the registry's host", () => {
  it.each(["169.254.169.254/ai-trading", "169.254.10.1:5000/ai", "100.100.100.200/ai", "0.0.0.0:5000/ai", "224.0.0.1/ai", "255.255.255.255/ai"])(
    "%s (the metadata address, link-local, unspecified, multicast) is refused: the push would send the registry login there",
    (registry) => {
      expect(refused("prod", { ...k8s, registry }, "registry").message).toMatch(/no registry: the push would send the registry login there/);
    },
  );

  it("keeps a loopback registry (mirrored on the nodes), a private address and a DNS name", () => {
    for (const registry of ["127.0.0.1:5000/ai", "localhost:5001/ai", "10.0.0.5:5000/ai", "registry.example.com/ai"]) {
      expect(parseStackConfig("prod", { ...k8s, registry }).registry, registry).toBe(registry);
    }
  });
});

describe("a prod stack that copies another stack's settings", () => {
  it.each(["prod", "prod-eu"])("%s with dev's settings (the Docker target) is refused naming target and the stack (was taken: one replica, no backups)", (stack) => {
    expect(refused(stack, devFile, "target").message).toMatch(/'docker' is a development target .* a production stack \(prod, prod-\*\)/);
  });

  it("keeps Docker on dev stacks and on stacks of other names, and prod's own file", () => {
    expect(parseStackConfig("dev-alice", devFile).target).toBe("docker");
    expect(parseStackConfig("production-test", devFile).target).toBe("docker");
    expect(parseStackConfig("prod", prodFile).target).toBe("kubernetes");
  });

  it("prod with dev's verbose log level and LoadBalancer datastores is refused on its Kubernetes target", () => {
    refused("prod", { ...prodFile, logLevel: "trace" }, "logLevel");
    refused("prod", { ...prodFile, exposeDatastores: "true" }, "exposeDatastores");
    refused("prod", { ...prodFile, certIssuer: "letsencrypt-staging" }, "certIssuer");
  });

  // Checked this session by running the program under prod's name with local-k8s's file and the pack under prod.json
  // (tests/policies/run-pack): mandatory allowed-image-registries, pull-never-local-images, ingress-hosts,
  // allowed-storage-drivers, service-min-replicas and service-pod-disruption-budget violations.
  it("prod with local-k8s's file: the config takes it (a single-node cluster's settings are valid), the policy pack under prod.json refuses it", () => {
    const copied = parseStackConfig("prod", localK8sFile);
    expect(copied.serviceReplicas["api-gateway"]).toBe(1);
    expect(copied.kubernetes.edgeErrorsAnyHost).toBe(true);
  });
});

describe("trustedProxies on Docker must cover the edge's network", () => {
  it.each(["10.0.0.0/16", "127.0.0.1", "172.28.0.5", "172.28.0.0/25", "172.28.0.128/25", "fd00::1", "fd00:10::/48, 10.244.0.0/16"])(
    "%s, which leaves out some of dockerSubnet 172.28.0.0/24, is refused (was taken: every client counted as the edge's one address)",
    (trustedProxies) => {
      expect(refused("dev", { ...docker, trustedProxies }, "trustedProxies").message).toContain("does not cover dockerSubnet '172.28.0.0/24', where the engine gives the Nginx edge its address");
    },
  );

  it("takes the subnet itself, a range holding it, and extra ranges beside it; Kubernetes is not held to it", () => {
    for (const trustedProxies of ["172.28.0.0/24", "172.28.0.0/16", "127.0.0.1, 172.28.0.0/23", "fd00::1, 172.28.0.0/24"]) {
      expect(parseStackConfig("dev", { ...docker, trustedProxies }).trustedProxies, trustedProxies).toBe(trustedProxies);
    }
    expect(parseStackConfig("dev", { ...docker, dockerSubnet: "10.20.30.0/24", trustedProxies: "10.20.0.0/16" }).trustedProxies).toBe("10.20.0.0/16");
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: "10.0.0.0/16" }).trustedProxies).toBe("10.0.0.0/16");
  });
});

describe("credentials in the providers' plain settings (checkPlainConfigValues)", () => {
  const kubeconfigWithToken = "apiVersion: v1\nusers:\n- name: deployer\n  user:\n    token: c2VjcmV0LXRva2VuLXZhbHVlLWZvci10ZXN0\n";
  const kubeconfigWithKey = JSON.stringify({ users: [{ name: "admin", user: { "client-key-data": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=" } }] });

  function plainRefusal(values: Record<string, string>, encrypted: string[] = []): ConfigError {
    try {
      checkPlainConfigValues("prod", values, encrypted);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return e as ConfigError;
    }
    throw new Error(`expected a ConfigError for ${Object.keys(values).join(", ")}`);
  }

  it.each([
    ["kubernetes:kubeconfig", kubeconfigWithToken, "c2VjcmV0LXRva2Vu"],
    ["kubernetes:kubeconfig", kubeconfigWithKey, "LS0tLS1CRUdJTiBSU0Eg"],
    ["docker:registryAuth", '[{"address": "registry.example.com", "username": "ci", "password": "hunter2-but-longer"}]', "hunter2"],
    ["docker:host", `ssh://deploy@host?token=ghp_${"a1B2c3D4e5F6g7H8i9J0".repeat(2)}`, "ghp_a1B2"],
    ["pulumi:tags", `{"owner": "AKIAZ7Q2M4N6P8R0T1V3"}`, "AKIAZ7Q2"],
  ])("%s set in plain text holding a credential is refused naming its namespace and key, the value not shown", (full, value, part) => {
    const e = plainRefusal({ [full]: value });
    expect(e.message.startsWith(`Invalid configuration ${full} on stack 'prod': is set in plain text and holds what looks like a credential`), e.message).toBe(true);
    expect(e.message).toContain(`pulumi config set --secret ${full}`);
    expect(e.message).not.toContain(part);
  });

  it("takes the same values set with --secret, a kubeconfig given as a path or without credentials, and leaves the project's keys to the parser", () => {
    expect(() => checkPlainConfigValues("prod", { "kubernetes:kubeconfig": kubeconfigWithToken }, ["kubernetes:kubeconfig"])).not.toThrow();
    expect(() => checkPlainConfigValues("prod", { "kubernetes:kubeconfig": "~/.kube/config", "kubernetes:context": "prod-cluster", "docker:host": "unix:///var/run/docker.sock" }, [])).not.toThrow();
    expect(() => checkPlainConfigValues("prod", { "kubernetes:kubeconfig": "users:\n- name: sso\n  user:\n    exec:\n      command: aws\n      tokenFile: /var/run/token\n" }, [])).not.toThrow();
    expect(() => checkPlainConfigValues("prod", { "trading:registryUsername": `ghp_${"x".repeat(36)}` }, [])).not.toThrow();
  });
});

describe("trustedProxies on Kubernetes must hold an address the ingress controller can send from", () => {
  it.each(["127.0.0.1", "::1", "0:0:0:0:0:0:0:1", "fe80::1", "FE80::/64", "127.0.0.0/16, fe80::/64"])(
    "%s (only loopback or link-local) is refused: the controller's pods send from the pod network (was taken: every client counted as the controller)",
    (trustedProxies) => {
      expect(refused("prod", { ...k8s, trustedProxies }, "trustedProxies").message).toMatch(/holds only loopback or link-local addresses, which the ingress controller's pods never send from/);
    },
  );

  it("takes loopback beside the pod network, and unique local IPv6 alone", () => {
    for (const trustedProxies of ["127.0.0.1, 10.244.0.0/16", "fd00:10::/48", "::1, fd00::5"]) {
      expect(parseStackConfig("prod", { ...k8s, trustedProxies }).trustedProxies, trustedProxies).toBe(trustedProxies);
    }
  });
});

describe("a YAML list where a comma-separated text belongs", () => {
  it.each([
    ["notifyWebhookPorts", "[443, 8443]", "'443,8443'"],
    ["disabledServices", '["chain-debug", "revenue-analytics"]', "'chain-debug,revenue-analytics'"],
    ["trustedProxies", '["10.244.0.0/16", "fd00:10::/48"]', "'10.244.0.0/16,fd00:10::/48'"],
    ["ingressControllerPodLabels", '["app.kubernetes.io/name=traefik"]', "'app.kubernetes.io/name=traefik'"],
  ])("%s %s is refused with the text meant (was: 'must be a single value')", (key, value, meant) => {
    expect(refused("prod", { ...k8s, [key]: value }, key).message).toContain(`must be one comma-separated text, got a YAML/JSON list '${value}': write it as ${meant}`);
  });

  it("a list of objects, or a list for a single-value key, keeps the single-value refusal", () => {
    expect(refused("prod", { ...k8s, notifyWebhookPorts: '[{"port": 443}]' }, "notifyWebhookPorts").message).toMatch(/must be a single value/);
    expect(refused("prod", { ...k8s, smtpHost: '["a.example.com", "b.example.com"]' }, "smtpHost").message).toMatch(/must be a single value/);
  });
});

describe("an image override for a datastore that is off", () => {
  it.each([
    ["dev", docker, "redisImage", "redis:7.4.1"],
    ["dev", { ...docker, arangodbEnabled: "false" }, "arangodbImage", "arangodb:3.12.3"],
    ["prod", { ...k8s, weaviateEnabled: "false" }, "weaviateImage", "cr.weaviate.io/semitechnologies/weaviate:1.26.1"],
  ])("%s: %s set while the datastore is off is refused (was ignored without a word)", (stack, base, key, image) => {
    expect(refused(stack, { ...base, [key]: image }, key).message).toMatch(/is set while trading:\w+Enabled is false, so no \w+ runs it/);
  });

  it("is taken with the datastore on, and a floating tag is still named as such first", () => {
    expect(parseStackConfig("dev", { ...docker, redisEnabled: "true", redisImage: "redis:7.4.1" }).datastores.redis.image).toBe("redis:7.4.1");
    expect(refused("dev", { ...docker, redisImage: "redis:stable" }, "redisImage").message).toMatch(/floating tag "stable"/);
  });
});

describe("a credential pair given one value twice", () => {
  const key = "q8Vn3Lx7Rt2Kp9Zm4Wd6Hs1Jf5Gc0Yb";
  it.each([
    ["binanceApiKey", "binanceSecretKey"],
    ["paymentProcessorApiKey", "paymentWebhookSecret"],
  ] as const)("%s and %s equal is refused naming the second, on every stack, the value never shown", (first, second) => {
    for (const stack of ["dev", "prod"]) {
      try {
        checkSecretValues(stack, { [first]: key, [second]: key });
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).message).toBe(
          `Invalid configuration trading:${second} on stack '${stack}': holds the same value as ${first}, its pair's other half (one of them pasted twice): set each to its own credential (pulumi config set --secret trading:${second} <value>); the values are not shown here`,
        );
      }
    }
  });

  it("takes two different values, and one half alone (the pairing rule is checkSecretConfig's)", () => {
    expect(() => checkSecretValues("prod", { binanceApiKey: key, binanceSecretKey: `${key}x` })).not.toThrow();
    expect(() => checkSecretValues("prod", { paymentProcessorApiKey: key })).not.toThrow();
  });
});

describe("a target's settings on the other target", () => {
  it.each([
    ["certIssuer", "letsencrypt-prod"],
    ["tlsSecretName", "ai-trading-tls"],
    ["storageClass", "standard"],
    ["ingressControllerPodLabels", "app.kubernetes.io/name=ingress-nginx"],
    ["renderYamlTo", "rendered/dev"],
  ])("%s set on a Docker stack is refused (was ignored: e.g. a self-signed certificate where an issuer was meant)", (key, value) => {
    expect(refused("dev", { ...devFile, [key]: value }, key).message).toMatch(/is read on Kubernetes only, and this stack's target is docker/);
  });

  it("Traefik with the NGINX controller's namespace (the default ingress-nginx) is refused: the gateway would admit none of Traefik's pods", () => {
    expect(refused("prod", { ...k8s, ingressClass: "traefik" }, "ingressControllerNamespace").message).toMatch(/is 'ingress-nginx' \(the default, the NGINX controller's\) with the Traefik ingress class 'traefik'/);
    expect(parseStackConfig("prod", { ...k8s, ingressClass: "traefik", ingressControllerNamespace: "traefik" }).kubernetes.ingressControllerNamespace).toBe("traefik");
    expect(parseStackConfig("local-k8s", localK8sFile).kubernetes.ingressClass).toBe("traefik");
  });
});

describe("a credential's misspelt key set in plain text", () => {
  it("is refused with the credential meant, and told the value now sits in plain text", () => {
    const e = keysRefusal("prod", ["trading:binanceApiKeys"]);
    expect(e.message).toBe(
      "Invalid configuration trading:binanceApiKeys on stack 'prod': is not a setting of this program (a misspelt key is otherwise ignored and its default applies); did you mean trading:binanceApiKey? It is a credential: set it with 'pulumi config set --secret trading:binanceApiKey <value>', remove this key, and revoke the value it holds in plain text",
    );
    expect(keysRefusal("prod", ["trading:smtpPasword"]).message).toContain("It is a credential: set it with 'pulumi config set --secret trading:smtpPassword <value>'");
  });

  it("set with --secret, or close to a setting, gets the did-you-mean alone", () => {
    expect(keysRefusal("prod", ["trading:binanceApiKeys"], ["trading:binanceApiKeys"]).message).not.toContain("It is a credential");
    expect(keysRefusal("prod", ["trading:smtpHosts"]).message).not.toContain("It is a credential");
  });
});
