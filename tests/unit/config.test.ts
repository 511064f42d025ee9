import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { checkConfigKeys, checkSecretConfig, ConfigError, configKeys, dataComponents, dockerAdminHostPorts, parseStackConfig, RawConfig, replicasOf, secretConfigKeys } from "../../stacks/config";
import { pulumiDeclarations } from "../../stacks/schema";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

/** `names` and every service that calls one of them, transitively (the entry point, which answers 404 for a missing route, aside). */
function withCallers(names: string[]): string[] {
  const off = new Set(names);
  let callers = catalog.filter((s) => !s.entryPoint && !off.has(s.name) && s.calls.some((c) => off.has(c)));
  while (callers.length > 0) {
    for (const s of callers) off.add(s.name);
    callers = catalog.filter((s) => !s.entryPoint && !off.has(s.name) && s.calls.some((c) => off.has(c)));
  }
  return [...off];
}

describe("parseStackConfig", () => {
  it("applies target-specific defaults", () => {
    const dev = parseStackConfig("dev", docker);
    expect(dev.target).toBe("docker");
    expect(dev.datastores.redis.enabled).toBe(false);
    expect(dev.datastores.postgres).toEqual({ enabled: true, image: undefined, storageGi: 20 });
    expect(dev.serviceReplicas["api-gateway"]).toBe(1);
    expect(dev.docker.publishAdminPorts).toBe(true);

    const prod = parseStackConfig("prod", k8s);
    expect(prod.imageSource).toBe("upstream");
    // Stateless services run at least two replicas on Kubernetes; singletons exactly one.
    for (const s of catalog) {
      if (s.singleton) expect(prod.serviceReplicas[s.name], s.name).toBe(1);
      else expect(prod.serviceReplicas[s.name], s.name).toBeGreaterThanOrEqual(2);
    }
    expect(prod.docker.publishAdminPorts).toBe(false);
  });

  it("shows a bad value escaped and cut: control characters, lone surrogates and bidirectional controls as \\uXXXX, at most 80 characters", () => {
    expect(error("dev", { ...docker, replicas: "a\u0000b" }).message).toBe("Invalid configuration trading:replicas on stack 'dev': must be an integer, got 'a\\u0000b'");
    expect(error("dev", { ...docker, tradingMode: "\u202elive" }).message).toContain("got '\\u202elive'");
    expect(error("dev", { ...docker, postgresImage: "x\ny\ud800" }).message).toContain("'x\\u000ay\\ud800'");
    expect(error("dev", { ...docker, serviceReplicas: '{"\\u0007x": 1}' }).message).toContain("'\\u0007x' is not a service of the catalog");
    const long = error("dev", { ...docker, namespace: "n".repeat(100_000) }).message;
    expect(long).toContain(`got '${"n".repeat(80)}...' (100000 characters)`);
    expect(long.length).toBeLessThan(300);
    // Every key, every hostile value: a ConfigError naming the key and the stack, printable and short.
    for (const key of configKeys)
      for (const v of ["\u0000", "a\u0000b", "\ud800", "\u202e1", "x\r\ny", "9".repeat(100_000), "{\"__proto__\":{\"x\":1}}", "1e309", "-1", "[1,2"])
        for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
          let e: unknown;
          try {
            parseStackConfig(stack, { ...base, [key]: v });
          } catch (err) {
            e = err;
          }
          if (e === undefined) continue;
          expect(e, `${key}=${JSON.stringify(v).slice(0, 20)}`).toBeInstanceOf(ConfigError);
          const m = (e as ConfigError).message;
          expect(m).toContain(`on stack '${stack}'`);
          expect(m.length, key).toBeLessThan(400);
          expect(m, key).not.toMatch(/[\u0000-\u001f\u202a-\u202e]|[\ud800-\udfff]/);
        }
  });

  it("refuses a control or invisible character in every key's value, on both targets (none has a use for one; a NUL reached the providers)", () => {
    for (const key of configKeys)
      for (const v of ["a\u0000b", "x\u200fy", "1\u0085"])
        for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
          const e = error(stack, { ...base, [key]: v });
          expect(e.key, `${stack} ${key}=${JSON.stringify(v)}`).toBe(key);
        }
  });

  it("refuses a YAML object or list where a string is expected (the CLI hands it over as JSON text), for every key but the maps (serviceReplicas, serviceSettings)", () => {
    for (const key of configKeys.filter((k) => k !== "serviceReplicas" && k !== "serviceSettings"))
      for (const v of ['{"a@b": 1}', "[1, 2]"])
        for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
          const e = error(stack, { ...base, [key]: v });
          expect(e.key, `${stack} ${key}=${v}`).toBe(key);
        }
    expect(error("dev", { ...docker, smtpUsername: '{"user": "alerts"}' }).message).toBe(
      "Invalid configuration trading:smtpUsername on stack 'dev': must be a single value, got a YAML/JSON object or list '{\"user\": \"alerts\"}'",
    );
  });

  it("names the key and the stack in every error", () => {
    const e = error("prod", { ...k8s, replicas: "two" });
    expect(e.message).toBe("Invalid configuration trading:replicas on stack 'prod': must be an integer, got 'two'");
    expect(e.key).toBe("replicas");
    expect(e.stack).toBe("prod");
  });

  it.each([
    [{}, "target", "is required, one of docker, kubernetes"],
    [{ target: "swarm" }, "target", "must be one of docker, kubernetes, got 'swarm'"],
    [{ ...docker, postgresEnabled: "yes" }, "postgresEnabled", "must be true or false, got 'yes'"],
    [{ ...docker, replicas: "-1" }, "replicas", "must be between 0 and 50, got -1"],
    [{ ...docker, postgresImage: "Postgres:::" }, "postgresImage", "is not a valid image reference"],
    [{ ...docker, servicesImageTag: "latest" }, "servicesImageTag", "must be a pinned tag"],
    [{ ...docker, serviceReplicas: "{\"nope\": 2}" }, "serviceReplicas", "'nope' is not a service of the catalog"],
    [{ ...docker, serviceReplicas: "[1]" }, "serviceReplicas", "must be an object"],
    [{ ...docker, disabledServices: "api-gateway,ghost" }, "disabledServices", "'ghost' is not a service of the catalog"],
    [{ ...docker, httpPort: "8443" }, "httpsPort", "must differ from httpPort"],
    [{ target: "kubernetes", certIssuer: "x" }, "registry", "is required on Kubernetes"],
    [{ target: "kubernetes", registry: "r.example.com" }, "certIssuer", "Kubernetes needs TLS"],
    [{ ...k8s, imageSource: "local" }, "imageSource", "on Kubernetes set imagePullPolicy to Never"],
    [{ ...k8s, imagePullPolicy: "Sometimes" }, "imagePullPolicy", "must be one of Always, IfNotPresent, Never"],
    [{ ...k8s, cpuRequestRatio: "0" }, "cpuRequestRatio", "greater than 0 and at most 1"],
    [{ ...k8s, cpuRequestRatio: "1.5" }, "cpuRequestRatio", "greater than 0 and at most 1"],
    [{ ...k8s, cpuRequestRatio: "a tenth" }, "cpuRequestRatio", "got 'a tenth'"],
    [{ ...k8s, memoryRequestRatio: "0" }, "memoryRequestRatio", "greater than 0 and at most 1"],
    [{ ...k8s, memoryRequestRatio: "2" }, "memoryRequestRatio", "greater than 0 and at most 1, got '2'"],
    [{ ...k8s, memoryRequestRatio: "-0.5" }, "memoryRequestRatio", "got '-0.5'"],
    [{ ...k8s, memoryRequestRatio: "half" }, "memoryRequestRatio", "got 'half'"],
    [{ ...k8s, memoryRequestRatio: "1e-1" }, "memoryRequestRatio", "got '1e-1'"],
    [{ ...k8s, replicas: "51" }, "replicas", "must be between 0 and 50, got 51"],
    [{ ...k8s, serviceReplicas: "{\"portfolio-manager\": 0}" }, "serviceReplicas", "replicas of 'portfolio-manager' must be an integer between 1 and 6"],
    [{ ...k8s, serviceReplicas: "{\"portfolio-manager\": \"2\"}" }, "serviceReplicas", "replicas of 'portfolio-manager' must be an integer"],
    [{ ...k8s, ingressControllerNamespace: "Traefik" }, "ingressControllerNamespace", "must be a DNS label"],
    [{ ...k8s, namespace: "Trading_NS" }, "namespace", "must be a DNS label"],
    [{ ...k8s, backupSchedule: "daily" }, "backupSchedule", "five-field cron"],
    [{ ...docker, adminBindAddress: "0.0.0.300" }, "adminBindAddress", "must be an IPv4 address"],
    [{ ...docker, tradingMode: "yolo" }, "tradingMode", "must be one of paper, live"],
    [{ ...docker, dockerPidsLimitStateless: "0" }, "dockerPidsLimitStateless", "must be between 16 and 32768 (the policy pack's pids-limit refuses a container above its default maxPidsLimit, 32768: above it a limit no longer bounds a fork bomb on the host), got 0"],
    [{ ...docker, dockerPidsLimitStateful: "-1" }, "dockerPidsLimitStateful", "must be between 16 and 32768 (the policy pack's pids-limit refuses a container above its default maxPidsLimit, 32768: above it a limit no longer bounds a fork bomb on the host), got -1"],
    [{ ...docker, dockerPidsLimitJob: "many" }, "dockerPidsLimitJob", "must be an integer, got 'many'"],
    [{ ...docker, dockerPidsLimitJob: "64.5" }, "dockerPidsLimitJob", "must be an integer, got '64.5'"],
    [{ ...k8s, storageClass: "Fast SSD" }, "storageClass", "must be a Kubernetes object name (lowercase, digits, '-', '.'; at most 253), got 'Fast SSD'"],
    [{ ...k8s, ingressClass: "nginx/public" }, "ingressClass", "must be a Kubernetes object name (lowercase, digits, '-', '.'; at most 253), got 'nginx/public'"],
    [{ ...k8s, registry: "../../etc" }, "registry", "is not a valid registry/repository prefix: '../../etc'"],
    [{ ...k8s, registry: "registry.example.com/-ai" }, "registry", "is not a valid registry/repository prefix"],
    [{ ...docker, smtpUsername: "a\u0000b" }, "smtpUsername", "must not contain control or invisible characters, got 'a\\u0000b'"],
    [{ ...docker, registryUsername: "dep\u202eloy" }, "registryUsername", "must not contain control or invisible characters, got 'dep\\u202eloy'"],
    [{ ...k8s, renderYamlTo: "out\u0000" }, "renderYamlTo", "must not contain control or invisible characters"],
    [{ ...docker, smtpFrom: "a\u0000b@example.com" }, "smtpFrom", "must not contain control or invisible characters"],
    [{ ...k8s, publishAdminPorts: "maybe" }, "publishAdminPorts", "must be true or false, got 'maybe'"],
  ])("rejects %j at %s", (raw, key, fragment) => {
    const e = error("dev", raw as RawConfig);
    expect(e.key).toBe(key);
    expect(e.message).toContain(`trading:${key} on stack 'dev'`);
    expect(e.message).toContain(fragment);
  });

  // The definition of "pinned" is the policy pack's (catalog/images.ts): a floating tag other than
  // latest used to pass here and the component guard, and only pinned-image-tags caught it, later.
  describe("image overrides (trading:<datastore>Image) must be pinned", () => {
    const unpinned: [string, string][] = [
      ["redis:stable", 'uses the floating tag "stable"'],
      ["postgres:alpine", 'uses the floating tag "alpine"'],
      ["nginx:mainline", 'uses the floating tag "mainline"'],
      ["clickhouse/clickhouse-server:LATEST", 'uses the floating tag "LATEST"'],
      ["registry.example.com:5000/redis:main", 'uses the floating tag "main"'],
      ["redis", 'has no tag (Docker resolves it to "latest")'],
      ["registry.example.com:5000/mirror/postgres", 'has no tag (Docker resolves it to "latest")'],
      ["redis@sha256:abc", 'has a malformed digest "sha256:abc"'],
    ];

    it.each(dataComponents.flatMap((name) => unpinned.map(([ref, reason]) => [`${name}Image`, ref, reason] as const)))(
      "refuses %s=%s on both targets, naming the key and the stack",
      (key, ref, reason) => {
        for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
          const e = error(stack, { ...base, [key]: ref });
          expect(e.key).toBe(key);
          expect(e.stack).toBe(stack);
          expect(e.message).toContain(`trading:${key} on stack '${stack}': '${ref}' ${reason}: pin a version tag`);
        }
      },
    );

    it("says how to fix it: a version tag or a digest of the same repository, or the stack's default", () => {
      expect(error("dev", { ...docker, redisImage: "redis:stable" }).message).toBe(
        "Invalid configuration trading:redisImage on stack 'dev': 'redis:stable' uses the floating tag \"stable\": " +
          "pin a version tag (redis:<version>) or a digest (redis@sha256:<64 hex digits>), " +
          "or remove the key (pulumi config rm trading:redisImage) for the stack's pinned default",
      );
    });

    it("accepts version tags, digests and tag plus digest", () => {
      const digest = `sha256:${"a".repeat(64)}`;
      for (const ref of ["redis:7.4.1", "redis:7.4.1-alpine", "registry.example.com:5000/mirror/postgres:16.4", `redis@${digest}`, `redis:stable@${digest}`]) {
        expect(parseStackConfig("dev", { ...docker, redisEnabled: "true", redisImage: ref }).datastores.redis.image, ref).toBe(ref);
      }
    });
  });

  it.each(["latest", "stable", "main", "Nightly"])("refuses the floating services image tag %s", (tag) => {
    const e = error("prod", { ...k8s, servicesImageTag: tag });
    expect(e.key).toBe("servicesImageTag");
    expect(e.message).toContain(`trading:servicesImageTag on stack 'prod': must be a pinned tag (a version such as 0.1.0, not a floating tag: latest, stable,`);
    expect(e.message).toContain(`got '${tag}'`);
  });

  it("gives every Docker container a PID limit by workload kind, each configurable per stack", () => {
    expect(parseStackConfig("dev", docker).docker.pidsLimits).toEqual({ stateless: 512, stateful: 4096, job: 256 });
    const tuned = parseStackConfig("dev", { ...docker, dockerPidsLimitStateless: "128", dockerPidsLimitStateful: " 2048 ", dockerPidsLimitJob: "64" });
    expect(tuned.docker.pidsLimits).toEqual({ stateless: 128, stateful: 2048, job: 64 });
  });

  it("refuses to switch off a datastore a deployed service requires, and says how to proceed", () => {
    const e = error("dev", { ...docker, postgresEnabled: "false" });
    expect(e.key).toBe("postgresEnabled");
    expect(e.message).toMatch(/requires postgres; enable it or add .* to trading:disabledServices/);
  });

  it("allows a datastore off once the services needing it, and the services calling those, are disabled", () => {
    const needing = withCallers(catalog.filter((s) => s.requires.includes("postgres")).map((s) => s.name));
    const cfg = parseStackConfig("dev", { ...docker, postgresEnabled: "false", disabledServices: needing.join(",") });
    expect(cfg.datastores.postgres.enabled).toBe(false);
    expect(cfg.services.map((s) => s.name)).not.toContain("user-management");
  });

  it("refuses to deploy a service whose callee is disabled, naming both (the entry point excepted: it answers 404)", () => {
    const caller = catalog.find((s) => !s.entryPoint && s.calls.length > 0)!;
    const callee = caller.calls[0];
    const e = error("dev", { ...docker, disabledServices: callee });
    expect(e.key).toBe("disabledServices");
    expect(e.message).toContain(`${caller.name} calls ${callee}, which is not deployed: add ${caller.name} to trading:disabledServices too, or deploy ${callee}`);
    // Its callers disabled with it, and theirs: accepted, and the entry point (which calls every routed service) stays.
    const cfg = parseStackConfig("dev", { ...docker, disabledServices: withCallers([callee]).join(",") });
    expect(cfg.services.map((s) => s.name)).not.toContain(callee);
    expect(cfg.services.some((s) => s.entryPoint)).toBe(true);
  });

  it("keeps singletons single, even when asked for more", () => {
    const single = catalog.find((s) => s.singleton)!;
    const e = error("prod", { ...k8s, serviceReplicas: JSON.stringify({ [single.name]: 2 }) });
    expect(e.message).toContain(`replicas of '${single.name}' must be an integer between 1 and 1 (its catalog maximum)`);
  });

  it("runs local images on Kubernetes only when they are imported into the nodes (pull policy Never), without a registry", () => {
    const cfg = parseStackConfig("local-k8s", { target: "kubernetes", imageSource: "local", imagePullPolicy: "Never", tlsSecretName: "tls", cpuRequestRatio: "0.1" });
    expect(cfg.registry).toBeUndefined();
    expect(cfg.kubernetes).toMatchObject({ imagePullPolicy: "Never", cpuRequestRatio: 0.1, ingressControllerNamespace: "ingress-nginx" });
    expect(parseStackConfig("prod", k8s).kubernetes).toMatchObject({ imagePullPolicy: "IfNotPresent", cpuRequestRatio: 1 });
  });

  it("takes notification-service's SMTP relay, refusing a host or sender that could smuggle anything else", () => {
    expect(parseStackConfig("dev", docker).smtp).toEqual({ host: undefined, port: 587, username: undefined, from: "AI Trading <notifications@localhost>" });
    expect(parseStackConfig("prod", { ...k8s, smtpHost: "smtp.example.com", smtpPort: "465", smtpUsername: "alerts" }).smtp).toMatchObject({ host: "smtp.example.com", port: 465, username: "alerts" });
    expect(error("prod", { ...k8s, smtpHost: "smtp.example.com;rm -rf" }).message).toContain("trading:smtpHost");
    expect(error("prod", { ...k8s, smtpFrom: "a@b.c\nBcc: x@y.z" }).message).toContain("trading:smtpFrom");
    expect(error("prod", { ...k8s, smtpPort: "0" }).message).toContain("trading:smtpPort");
  });

  it("sizes requests below limits only when the stack asks (prod keeps requests = limits)", () => {
    expect(parseStackConfig("prod", k8s).kubernetes).toMatchObject({ cpuRequestRatio: 1, memoryRequestRatio: 1 });
    expect(parseStackConfig("local-k8s", { ...k8s, cpuRequestRatio: "0.05", memoryRequestRatio: ".5" }).kubernetes).toMatchObject({ cpuRequestRatio: 0.05, memoryRequestRatio: 0.5 });
  });

  it("lets a stack lower the replicas below the catalog's count (a single-node cluster), one service kept at two", () => {
    const prod = parseStackConfig("prod", { ...k8s, replicas: "2" });
    for (const s of catalog) expect(prod.serviceReplicas[s.name], s.name).toBe(s.singleton ? 1 : 2);
    const small = parseStackConfig("local-k8s", { ...k8s, replicas: "1", serviceReplicas: JSON.stringify({ "portfolio-manager": 2 }) });
    for (const s of catalog) expect(small.serviceReplicas[s.name], s.name).toBe(s.name === "portfolio-manager" ? 2 : 1);
    // Above the catalog's count, capped by its maximum; singletons stay single.
    const big = parseStackConfig("prod", { ...k8s, replicas: "9" });
    expect(big.serviceReplicas["api-gateway"]).toBe(9);
    expect(big.serviceReplicas["user-management"]).toBe(6);
    for (const s of catalog.filter((c) => c.singleton)) expect(big.serviceReplicas[s.name], s.name).toBe(1);
  });

  it("takes per-service replica overrides", () => {
    const cfg = parseStackConfig("prod", { ...k8s, serviceReplicas: JSON.stringify({ "api-gateway": 5 }) });
    expect(cfg.serviceReplicas["api-gateway"]).toBe(5);
  });

  it("trades live only on Binance's market data (real orders on synthetic or replayed candles spend real money on fake prices)", () => {
    for (const source of ["synthetic", "replay"]) {
      for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
        const e = error(stack, { ...base, tradingMode: "live", marketDataSource: source });
        expect(e.key).toBe("marketDataSource");
        expect(e.message).toBe(`Invalid configuration trading:marketDataSource on stack '${stack}': must be binance when tradingMode is live (real orders on fake prices), got '${source}'`);
      }
    }
    // The default source is synthetic: live alone is refused too.
    expect(error("prod", { ...k8s, tradingMode: "live" }).key).toBe("marketDataSource");
    expect(parseStackConfig("prod", { ...k8s, tradingMode: "live", marketDataSource: "binance" }).trading).toEqual({ mode: "live", marketDataSource: "binance" });
    for (const source of ["synthetic", "replay", "binance"]) {
      expect(parseStackConfig("dev", { ...docker, marketDataSource: source }).trading).toEqual({ mode: "paper", marketDataSource: source });
    }
  });

  it("refuses Grafana without Prometheus, its only datasource", () => {
    const e = error("dev", { ...docker, prometheusEnabled: "false" });
    expect(e.key).toBe("grafanaEnabled");
    expect(e.message).toBe(
      "Invalid configuration trading:grafanaEnabled on stack 'dev': Grafana's only datasource is the stack's Prometheus: enable prometheusEnabled or set grafanaEnabled false",
    );
    expect(error("prod", { ...k8s, prometheusEnabled: "false", grafanaEnabled: "true" }).key).toBe("grafanaEnabled");
    expect(parseStackConfig("dev", { ...docker, prometheusEnabled: "false", grafanaEnabled: "false" }).monitoring).toMatchObject({ prometheus: false, grafana: false });
    expect(parseStackConfig("dev", { ...docker, grafanaEnabled: "false" }).monitoring).toMatchObject({ prometheus: true, grafana: false });
    expect(parseStackConfig("prod", k8s).monitoring).toMatchObject({ prometheus: true, grafana: true });
  });

  it("takes tlsSecretName and certIssuer only as Kubernetes object names (DNS-1123 subdomains)", () => {
    for (const [key, value] of [
      ["tlsSecretName", "Ai-Trading-TLS"],
      ["tlsSecretName", "tls_secret"],
      ["tlsSecretName", "-tls"],
      ["tlsSecretName", "tls."],
      ["tlsSecretName", "a..b"],
      ["certIssuer", "letsencrypt prod"],
      ["certIssuer", "issuer-"],
      ["certIssuer", "x".repeat(254)],
    ] as const) {
      const e = error("prod", { ...k8s, [key]: value });
      expect(e.key, value).toBe(key);
      expect(e.message, value).toMatch(new RegExp(`^Invalid configuration trading:${key} on stack 'prod': must be a Kubernetes object name \\(lowercase, digits, '-', '\\.'; at most 253\\), got '`));
    }
    expect(error("prod", { ...k8s, certIssuer: "LetsEncrypt" }).message).toBe(
      "Invalid configuration trading:certIssuer on stack 'prod': must be a Kubernetes object name (lowercase, digits, '-', '.'; at most 253), got 'LetsEncrypt'",
    );
    expect(parseStackConfig("prod", { ...k8s, certIssuer: "letsencrypt-prod.v2", tlsSecretName: "ai-trading-tls" }).kubernetes).toMatchObject({
      certIssuer: "letsencrypt-prod.v2",
      tlsSecretName: "ai-trading-tls",
    });
    expect(parseStackConfig("prod", { ...k8s, certIssuer: "x".repeat(253) }).kubernetes.certIssuer).toHaveLength(253);
  });

  it("keeps the Docker edge's ports off the admin host ports when both are published on the same address", () => {
    expect(error("dev", { ...docker, httpPort: "15432" }).message).toBe(
      "Invalid configuration trading:httpPort on stack 'dev': must differ from postgres's admin host port 15432 on adminBindAddress 127.0.0.1 (or set publishAdminPorts false)",
    );
    // Every interface (0.0.0.0) took the edge's address too; it is refused itself since session 50
    // (tests/unit/config-exposure.test.ts).
    expect(error("dev", { ...docker, httpsPort: "13000", adminBindAddress: "0.0.0.0" }).key).toBe("adminBindAddress");
    // Every admin port, when its owner is deployed (the legacy Redis on, Redpanda's own server: upstream images).
    for (const [owner, port] of Object.entries(dockerAdminHostPorts)) {
      for (const key of ["httpPort", "httpsPort"]) {
        const e = error("dev", { ...docker, imageSource: "upstream", redisEnabled: "true", [key]: String(port) });
        expect(e.key, `${key}=${port}`).toBe(key);
        expect(e.message).toContain(`must differ from ${owner}'s admin host port ${port}`);
      }
    }
    // Not published, published on another address, or not Docker: no clash.
    expect(parseStackConfig("dev", { ...docker, httpPort: "15432", httpsPort: "19090", publishAdminPorts: "false" }).docker).toMatchObject({ httpPort: 15432, httpsPort: 19090, publishAdminPorts: false });
    expect(parseStackConfig("dev", { ...docker, httpPort: "15432", adminBindAddress: "10.8.0.1" }).docker).toMatchObject({ httpPort: 15432, adminBindAddress: "10.8.0.1" });
    expect(parseStackConfig("prod", { ...k8s, httpPort: "15432", httpsPort: "13000" }).docker).toMatchObject({ httpPort: 15432, httpsPort: 13000, publishAdminPorts: false });
    expect(parseStackConfig("dev", { ...docker, httpPort: "80", httpsPort: "443" }).docker).toMatchObject({ httpPort: 80, httpsPort: 443 });
  });
});

describe("checkConfigKeys", () => {
  const message = (stack: string, keys: string[], secret: string[] = []): string => {
    try {
      checkConfigKeys(stack, keys, secret);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).message;
    }
    throw new Error("expected a ConfigError");
  };

  it("refuses a key of the project's namespace the program does not read (a typo would silently keep the default), suggesting the nearest", () => {
    expect(message("dev", ["trading:target", "trading:publishAdminPort"])).toBe(
      "Invalid configuration trading:publishAdminPort on stack 'dev': is not a setting of this program (a misspelt key is otherwise ignored and its default applies); did you mean trading:publishAdminPorts?",
    );
    expect(message("prod", ["trading:Replicas"])).toContain("trading:Replicas on stack 'prod': is not a setting of this program (a misspelt key is otherwise ignored and its default applies); did you mean trading:replicas?");
    expect(message("prod", ["trading:binanceApiKy"], ["trading:binanceApiKy"])).toContain("did you mean trading:binanceApiKey?");
    expect(message("dev", ["trading:colour"])).toBe(
      "Invalid configuration trading:colour on stack 'dev': is not a setting of this program (a misspelt key is otherwise ignored and its default applies); the settings are declared in Pulumi.yaml, the secrets listed in the README (Stack configuration)",
    );
    // A hostile key is shown escaped, like a hostile value.
    expect(message("dev", ["trading:x\u0000\u202e"])).toContain("trading:x\\u0000\\u202e on stack 'dev'");
    expect(message("dev", ["trading:x\u0000\u202e"])).not.toMatch(/[\u0000\u202e]/);
  });

  it("refuses a credential set in plain text: it would sit readable in Pulumi.<stack>.yaml", () => {
    expect(message("prod", ["trading:target", "trading:binanceApiKey", "trading:binanceSecretKey"], ["trading:binanceSecretKey"])).toBe(
      "Invalid configuration trading:binanceApiKey on stack 'prod': is a credential stored in plain text in the stack's configuration; set it again with 'pulumi config set --secret trading:binanceApiKey <value>'",
    );
    for (const key of secretConfigKeys) expect(message("dev", [`trading:${key}`])).toContain(`pulumi config set --secret trading:${key} <value>`);
  });

  it("accepts every key the program reads, secrets set as secrets, and other namespaces", () => {
    const all = [...configKeys, ...secretConfigKeys].map((k) => `trading:${k}`);
    expect(() => checkConfigKeys("prod", [...all, "kubernetes:context", "docker:host", "pulumi:tags"], secretConfigKeys.map((k) => `trading:${k}`))).not.toThrow();
  });

  it("refuses a setting that is no credential set with --secret: the program reads it as plain text, its secrecy lost without a word", () => {
    for (const key of ["registryUsername", "ingressHost", "smtpUsername"]) {
      expect(message("prod", ["trading:target", `trading:${key}`], [`trading:${key}`])).toBe(
        `Invalid configuration trading:${key} on stack 'prod': is set with --secret but is not a credential: the program would read it as plain text into resources and outputs; set it again without --secret ('pulumi config set trading:${key} <value>')`,
      );
    }
    // Other namespaces are their owners' business.
    expect(() => checkConfigKeys("prod", ["kubernetes:context"], ["kubernetes:context"])).not.toThrow();
  });
});

describe("checkSecretConfig", () => {
  const pem = "-----BEGIN CERTIFICATE-----";
  const key = "-----BEGIN PRIVATE KEY-----";
  const message = (config: ReturnType<typeof parseStackConfig>, secrets: Parameters<typeof checkSecretConfig>[1]): string => {
    try {
      checkSecretConfig(config, secrets);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).message;
    }
    throw new Error("expected a ConfigError");
  };
  const localK8s = parseStackConfig("local-k8s", { target: "kubernetes", imageSource: "local", imagePullPolicy: "Never", tlsSecretName: "ai-trading-tls" });

  it("takes the TLS certificate and its private key only together", () => {
    expect(message(localK8s, { tlsCertificate: pem })).toBe(
      "Invalid configuration trading:tlsPrivateKey on stack 'local-k8s': is required together with tlsCertificate (pulumi config set --secret trading:tlsPrivateKey ...)",
    );
    expect(message(parseStackConfig("dev", docker), { tlsPrivateKey: key })).toBe(
      "Invalid configuration trading:tlsCertificate on stack 'dev': is required together with tlsPrivateKey (pulumi config set --secret trading:tlsCertificate ...)",
    );
    expect(() => checkSecretConfig(localK8s, { tlsCertificate: pem, tlsPrivateKey: key })).not.toThrow();
    expect(() => checkSecretConfig(parseStackConfig("dev", docker), { tlsCertificate: pem, tlsPrivateKey: key })).not.toThrow();
    expect(() => checkSecretConfig(localK8s, {})).not.toThrow();
  });

  it("refuses the stack's own certificate beside a cert-manager issuer: both would own the TLS Secret", () => {
    expect(message(parseStackConfig("prod", k8s), { tlsCertificate: pem, tlsPrivateKey: key })).toBe(
      "Invalid configuration trading:certIssuer on stack 'prod': must not be set with the tlsCertificate/tlsPrivateKey secrets: cert-manager and the stack would both own the TLS Secret",
    );
    expect(message(parseStackConfig("prod", { ...k8s, tlsSecretName: "ai-trading-tls" }), { tlsCertificate: pem, tlsPrivateKey: key })).toContain("trading:certIssuer on stack 'prod'");
    // cert-manager alone, an existing Secret alone, or the stack's certificate alone.
    expect(() => checkSecretConfig(parseStackConfig("prod", k8s), {})).not.toThrow();
    expect(() => checkSecretConfig(parseStackConfig("prod", { ...k8s, certIssuer: undefined, tlsSecretName: "existing-tls" }), {})).not.toThrow();
    expect(() => checkSecretConfig(localK8s, { tlsCertificate: pem, tlsPrivateKey: key })).not.toThrow();
    // Docker has no cert-manager: since session 65 certIssuer is refused there (it was ignored), and the certificate alone is taken.
    expect(error("dev", { ...docker, certIssuer: "letsencrypt" }).message).toMatch(/^Invalid configuration trading:certIssuer on stack 'dev': is read on Kubernetes only/);
    expect(() => checkSecretConfig(parseStackConfig("dev", docker), { tlsCertificate: pem, tlsPrivateKey: key })).not.toThrow();
  });

  it("takes the registry login only with its password, and the password only with a login", () => {
    expect(message(parseStackConfig("prod", { ...k8s, registryUsername: "deploy" }), {})).toBe(
      "Invalid configuration trading:registryPassword on stack 'prod': is required together with registryUsername (pulumi config set --secret trading:registryPassword ...)",
    );
    expect(message(parseStackConfig("prod", k8s), { registryPassword: "pw" })).toBe(
      "Invalid configuration trading:registryUsername on stack 'prod': is required together with the registryPassword secret (pulumi config set trading:registryUsername <user>)",
    );
    expect(() => checkSecretConfig(parseStackConfig("prod", { ...k8s, registryUsername: "deploy" }), { registryPassword: "pw" })).not.toThrow();
    expect(() => checkSecretConfig(parseStackConfig("prod", k8s), {})).not.toThrow();
  });
});

describe("Pulumi.yaml declarations", () => {
  const project = parse(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.yaml"), "utf8"));
  const declared = project.config as Record<string, { type: string; default?: unknown }>;

  it("declares every key the loader reads, in the project's namespace", () => {
    expect(project.name).toBe("trading");
    // serviceReplicas and serviceSettings are maps; project config can only declare scalars and arrays.
    const scalarKeys = configKeys.filter((k) => k !== "serviceReplicas" && k !== "serviceSettings");
    expect(Object.keys(declared).sort()).toEqual(scalarKeys.map((k) => `trading:${k}`).sort());
  });

  it("declares exactly what stacks/schema.ts states: type, default and description of every key", () => {
    expect(declared).toEqual(pulumiDeclarations());
  });

  it("gives every key but the target a default, so the CLI never demands an optional one", () => {
    const required = Object.entries(declared).filter(([, d]) => d.default === undefined).map(([k]) => k);
    expect(required).toEqual(["trading:target"]);
  });

  it("keeps secrets out of the declarations (they are set with --secret, never defaulted)", () => {
    for (const key of secretConfigKeys) expect(declared[`trading:${key}`]).toBeUndefined();
  });

  it("parses the declared defaults", () => {
    const raw: RawConfig = Object.fromEntries(Object.entries(declared).map(([k, d]) => [k.slice("trading:".length), d.default === undefined ? undefined : String(d.default)]));
    expect(parseStackConfig("dev", { ...raw, target: "docker" }).serviceReplicas["api-gateway"]).toBe(1);
    expect(() => parseStackConfig("prod", { ...raw, target: "kubernetes" })).toThrow("trading:registry on stack 'prod'");
  });
});

describe("replicasOf", () => {
  const scaling = { replicas: 2, minReplicas: 2, maxReplicas: 6 };
  const single = { replicas: 1, minReplicas: 1, maxReplicas: 1 };
  it("takes the target's default when the stack sets 0: the catalog's count on Kubernetes, 1 on Docker", () => {
    expect(replicasOf("kubernetes", scaling, 0)).toBe(2);
    expect(replicasOf("docker", scaling, 0)).toBe(1);
    expect(replicasOf("kubernetes", single, 0)).toBe(1);
  });
  it("takes the stack's count, below or above the catalog's, capped by the catalog's maximum", () => {
    expect(replicasOf("kubernetes", scaling, 1)).toBe(1);
    expect(replicasOf("kubernetes", scaling, 4)).toBe(4);
    expect(replicasOf("kubernetes", scaling, 50)).toBe(6);
    expect(replicasOf("kubernetes", single, 3)).toBe(1);
    expect(replicasOf("docker", scaling, 3)).toBe(3);
  });
  it("prefers the per-service override", () => {
    expect(replicasOf("kubernetes", scaling, 1, 2)).toBe(2);
    expect(replicasOf("docker", scaling, 0, 5)).toBe(5);
  });
});
