/**
 * Red team round 65, second part (the first: config-red-team-65.test.ts, whose rules hold here too): stack
 * configuration values that were taken and are now refused before any resource exists, by a ConfigError naming
 * the key and the stack. Pure functions only (parseStackConfig): no engine. Found and fixed here:
 * - smtpPort on a datastore's, the cluster's, monitoring's or the edge's port (5432, 6379, 6443, 443, ...), which
 *   notification-service's egress then opened to the internet (catalog/addresses.ts smtpPortProblem, which the
 *   service's SMTP_PORT check shares: tests/unit/service-env-bounds, tests/business/notification-failure-texts);
 * - the edge's httpPort/httpsPort refused on an admin host port no container publishes (a datastore or monitoring
 *   that is off, Redpanda's offline stand-in Kafka), now only the ports the stack publishes count (stacks/host-ports.ts).
 */
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import { INTERNAL_SERVICE_PORTS } from "../../catalog/addresses";
import { ConfigError, parseStackConfig, RawConfig } from "../../stacks/config";
import { configError, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

/** The refusal of `raw` on `stack`, which must name `key` and the stack at the start of its message. */
function refused(stack: string, raw: RawConfig, key: string): ConfigError {
  const e = configError(stack, raw);
  expect(e.key).toBe(key);
  expect(e.message.startsWith(`Invalid configuration trading:${key} on stack '${stack}': `), e.message).toBe(true);
  return e;
}

describe("smtpPort on another service's port", () => {
  it.each(["5432", "6379", "8123", "9000", "8529", "8080", "9092", "6443", "10250", "2379", "9090", "3000", "80", "443"])(
    "smtpPort %s (a datastore's, the cluster's, monitoring's or the edge's) is refused",
    (smtpPort) => {
      expect(refused("prod", { ...k8s, smtpHost: "smtp.example.com", smtpPort }, "smtpPort").message).toMatch(new RegExp(`: ${smtpPort} is the port of .+, which speaks no SMTP`));
    },
  );

  it("every port of INTERNAL_SERVICE_PORTS is refused, on Docker too; a relay's ports stay free", () => {
    for (const port of Object.keys(INTERNAL_SERVICE_PORTS)) refused("dev", { ...docker, smtpPort: port }, "smtpPort");
    for (const port of ["25", "465", "587", "2525", "8025"]) expect(parseStackConfig("prod", { ...k8s, smtpHost: "smtp.example.com", smtpPort: port }).smtp.port).toBe(Number(port));
  });
});

/** Every service of the catalog, as disabledServices takes them. */
const ALL_SERVICES = catalog.map((s) => s.name).join(",");

describe("the edge's ports against the admin host ports: only what the stack publishes counts", () => {
  it.each([
    ["httpPort", "18529", "arangodbEnabled", ""],
    ["httpsPort", "18080", "weaviateEnabled", ""],
    // Services require these: with every service off, the datastore alone decides.
    ["httpPort", "15432", "postgresEnabled", ALL_SERVICES],
    ["httpsPort", "18123", "clickhouseEnabled", ALL_SERVICES],
    ["httpsPort", "16379", "dragonflyEnabled", ALL_SERVICES],
  ])("%s %s, the admin port of a datastore that is off (%s false), is free for the edge", (key, port, enabledKey, disabledServices) => {
    const services = disabledServices === "" ? {} : { disabledServices };
    expect(parseStackConfig("dev", { ...docker, ...services, [enabledKey]: "false", [key]: port }).docker[key as "httpPort" | "httpsPort"]).toBe(Number(port));
    // On: refused, naming the datastore's port.
    expect(refused("dev", { ...docker, ...services, [key]: port }, key).message).toContain(`admin host port ${port}`);
  });

  it("the legacy Redis (off by default), Prometheus and Grafana when off, and Redpanda's offline stand-in leave their ports free", () => {
    expect(parseStackConfig("dev", { ...docker, httpPort: "16380" }).docker.httpPort).toBe(16380);
    expect(parseStackConfig("dev", { ...docker, grafanaEnabled: "false", httpsPort: "13000" }).docker.httpsPort).toBe(13000);
    expect(parseStackConfig("dev", { ...docker, grafanaEnabled: "false", prometheusEnabled: "false", httpsPort: "19090" }).docker.httpsPort).toBe(19090);
    expect(parseStackConfig("dev", { ...docker, httpPort: "19092" }).docker.httpPort).toBe(19092); // Kafka, the local stand-in, publishes no admin port
    refused("dev", { ...docker, redisEnabled: "true", httpPort: "16380" }, "httpPort");
    refused("dev", { ...docker, httpsPort: "13000" }, "httpsPort");
    refused("dev", { ...docker, imageSource: "upstream", httpPort: "19092" }, "httpPort");
    refused("dev", { ...docker, redpandaImage: "docker.redpanda.com/redpandadata/redpanda:v24.2.7", httpPort: "19092" }, "httpPort");
  });
});

