/**
 * Red team round 65, second part (the first: config-red-team-65.test.ts, whose rules hold here too): stack
 * configuration values that were taken and are now refused before any resource exists, by a ConfigError naming
 * the key and the stack. Pure functions only (parseStackConfig): no engine. Found and fixed here:
 * - smtpPort on a datastore's, the cluster's, monitoring's or the edge's port (5432, 6379, 6443, 443, ...), which
 *   notification-service's egress then opened to the internet (catalog/addresses.ts smtpPortProblem, which the
 *   service's SMTP_PORT check shares: tests/unit/service-env-bounds, tests/business/notification-failure-texts);
 * - the edge's httpPort/httpsPort refused on an admin host port no container publishes (a datastore or monitoring
 *   that is off, Redpanda's offline stand-in Kafka), now only the ports the stack publishes count (stacks/host-ports.ts);
 * - renderYamlTo out of the project (`../x`, possibly another clone; an absolute path elsewhere; a symlink under
 *   rendered/ pointing out of it or into a folder git does not ignore): judged after `..` and the symlinks of its
 *   existing parents are resolved (the manifests hold the stack's Secrets in plain text);
 * - an ingressHost no public CA certifies (a single label; .local, .internal, .lan, .home.arpa, .test, .invalid, ...)
 *   with a certIssuer whose name says public ACME (letsencrypt*, le-*, zerossl, buypass, *acme*): the order fails. The
 *   stack knows the issuer by its name only (the ClusterIssuer is the cluster's): any other issuer stays free.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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


describe("renderYamlTo in the project's git-ignored rendered/ folder only", () => {
  const project = path.join(__dirname, "..", "..");
  /** Links of this run under the project's rendered/ folder (git-ignored), removed after. */
  const links = path.join(project, "rendered", `red-team-65b-${process.pid}`);
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), "render-outside-"));
  beforeAll(() => {
    fs.mkdirSync(links, { recursive: true });
    fs.symlinkSync(outside, path.join(links, "to-tmp"));
    fs.symlinkSync(path.join(project, "stacks"), path.join(links, "to-stacks"));
    fs.symlinkSync(path.join(project, "rendered"), path.join(links, "to-rendered"));
  });
  afterAll(() => {
    fs.rmSync(links, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it.each(["../x", "../other-clone/rendered/prod", "rendered/../../x", "/tmp/rendered-preview", path.join(os.tmpdir(), "rendered"), "/"])(
    "%s, a folder out of the project (or no rendered/ folder of it), is refused",
    (renderYamlTo) => {
      expect(refused("prod", { ...k8s, renderYamlTo }, "renderYamlTo").message).toMatch(/leaves the project|git does not ignore/);
    },
  );

  it("a path out of the project names the folder it reaches", () => {
    const e = refused("prod", { ...k8s, renderYamlTo: "../x" }, "renderYamlTo");
    expect(e.message).toContain(`'../x' leaves the project (it reaches '${path.resolve(fs.realpathSync(project), "..", "x")}')`);
    expect(e.message).toMatch(/use rendered\/<name> \(ignored by .gitignore\)$/);
  });

  it("a symlink under rendered/ is followed: out of the project, or into a folder git does not ignore, is refused", () => {
    const rel = path.relative(project, links);
    expect(refused("prod", { ...k8s, renderYamlTo: `${rel}/to-tmp/prod` }, "renderYamlTo").message).toContain("leaves the project");
    expect(refused("prod", { ...k8s, renderYamlTo: `${rel}/to-tmp` }, "renderYamlTo").message).toContain("leaves the project");
    expect(refused("prod", { ...k8s, renderYamlTo: `${rel}/to-stacks/x` }, "renderYamlTo").message).toContain("git does not ignore");
    // A link that stays in rendered/ keeps the folder ignored.
    expect(parseStackConfig("prod", { ...k8s, renderYamlTo: `${rel}/to-rendered/prod` }).kubernetes.renderYamlTo).toBe(`${rel}/to-rendered/prod`);
  });

  it("keeps rendered/<name> of the project, relative or absolute, existing or not", () => {
    for (const folder of ["rendered/prod", "./rendered/a/b", path.join(project, "rendered", "prod"), "build/rendered/x"]) {
      expect(parseStackConfig("prod", { ...k8s, renderYamlTo: folder }).kubernetes.renderYamlTo, folder).toBe(folder);
    }
  });
});

describe("ingressHost no public CA certifies, with a public ACME certIssuer", () => {
  it.each([
    ["trading", "a single label"],
    ["trading.local", ".local"],
    ["api.trading.internal", ".internal"],
    ["trading.lan", ".lan"],
    ["trading.home.arpa", ".arpa"],
    ["trading.test", ".test"],
    ["trading.invalid", ".invalid"],
    ["trading.example", ".example"],
    ["trading.corp", ".corp"],
  ])("ingressHost %s (%s) with certIssuer letsencrypt is refused", (ingressHost, what) => {
    const e = refused("prod", { ...k8s, ingressHost }, "ingressHost");
    expect(e.message).toContain(what);
    expect(e.message).toContain("which no public certificate authority issues for, and certIssuer 'letsencrypt' names a public ACME issuer");
  });

  it.each(["letsencrypt-prod", "le-prod", "lets-encrypt", "zerossl", "buypass-go", "acme-issuer", "corp-acme"])("certIssuer %s is taken for a public ACME issuer", (certIssuer) => {
    refused("prod", { ...k8s, certIssuer, ingressHost: "trading.internal" }, "ingressHost");
    expect(parseStackConfig("prod", { ...k8s, certIssuer, ingressHost: "trading.example.com" }).kubernetes.ingressHost).toBe("trading.example.com");
  });

  it("a private issuer, or the stack's own TLS secret, may serve an internal name; an IP address is refused whatever the issuer", () => {
    for (const certIssuer of ["selfsigned", "internal-ca", "step-ca", "vault-issuer"]) {
      for (const ingressHost of ["trading", "trading.internal", "trading.home.arpa", "trading.local-k8s.test"]) {
        expect(parseStackConfig("prod", { ...k8s, certIssuer, ingressHost }).kubernetes.ingressHost, `${certIssuer} ${ingressHost}`).toBe(ingressHost);
      }
    }
    const { certIssuer: _acme, ...withoutIssuer } = k8s;
    expect(parseStackConfig("prod", { ...withoutIssuer, tlsSecretName: "tls", ingressHost: "trading.lan" }).kubernetes.ingressHost).toBe("trading.lan");
    for (const ingressHost of ["10.0.0.5", "203.0.113.7"]) refused("prod", { ...k8s, certIssuer: "internal-ca", ingressHost }, "ingressHost");
    // A public name under a public TLD, including one that looks internal in its labels, stays free.
    for (const ingressHost of ["trading.example.com", "local.example.org", "internal.trading.io"]) expect(parseStackConfig("prod", { ...k8s, ingressHost }).kubernetes.ingressHost).toBe(ingressHost);
  });
});
