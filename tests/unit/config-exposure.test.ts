/**
 * Session 50's insecure-configuration hunt: values an operator can set that expose the platform, or
 * that the program would take and silently get wrong, each refused by the stack config with the key
 * and the stack in the message (the first line; the policy pack stays the second, under prod.json).
 * Pure functions first, then the real program under mocks (tests/helpers/program.ts: the stack's own
 * Pulumi.<stack>.yaml, every resource recorded, unmocked resource types and calls fail the run).
 */
import { describe, expect, it } from "vitest";
import { checkConfigKeys, checkSecretValues, ConfigError, parseStackConfig, READ_CONFIG_NAMESPACES, SecretConfigKey } from "../../stacks/config";
import { runProgram } from "../helpers/program";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

/** The ConfigError `fn` throws; fails the test when it throws none or another error. */
function thrown(fn: () => void): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("adminBindAddress: the admin ports never on every interface or a public address", () => {
  it("refuses 0.0.0.0, public, link-local and non-unicast addresses on every Docker stack while the admin ports are published", () => {
    const cases: [string, string][] = [
      ["0.0.0.0", "every interface of the host"],
      ["8.8.8.8", "a public address"],
      ["203.0.113.5", "a public address"],
      ["172.32.0.1", "a public address"],
      ["100.128.0.1", "a public address"],
      ["169.254.169.254", "a link-local address (the cloud metadata service's range)"],
      ["224.0.0.1", "no unicast address of a host"],
      ["255.255.255.255", "no unicast address of a host"],
      ["0.1.2.3", "no unicast address of a host"],
    ];
    for (const stack of ["dev", "dev-alice", "staging"]) {
      for (const [address, what] of cases) {
        const e = error(stack, { ...docker, adminBindAddress: address });
        expect(e.message, `${stack} ${address}`).toMatch(
          new RegExp(`^Invalid configuration trading:adminBindAddress on stack '${stack}': '${address.replace(/\./g, "\\.")}' is ${what.replace(/[()]/g, "\\$&")}.*: the datastores', Prometheus's and Grafana's ports would be published there`),
        );
        expect(e.message).toContain("or set trading:publishAdminPorts false");
      }
    }
  });

  it("keeps loopback, the private ranges and the shared range of VPNs (100.64/10), and any address when nothing is published or on Kubernetes (ignored there)", () => {
    for (const address of ["127.0.0.1", "127.0.0.2", "10.8.0.1", "172.16.0.1", "172.31.255.1", "192.168.1.10", "100.64.0.1", "100.127.255.254"]) {
      expect(parseStackConfig("dev", { ...docker, adminBindAddress: address }).docker.adminBindAddress, address).toBe(address);
    }
    expect(parseStackConfig("dev", { ...docker, adminBindAddress: "0.0.0.0", publishAdminPorts: "false" }).docker.publishAdminPorts).toBe(false);
    expect(parseStackConfig("prod", { ...k8s, adminBindAddress: "0.0.0.0" }).docker.publishAdminPorts).toBe(false);
  });
});

describe("exposeDatastores: LoadBalancer datastores on dev stacks only", () => {
  it("refuses it on Kubernetes on prod, local-k8s and any stack not named dev, pointing at kubectl port-forward", () => {
    for (const stack of ["prod", "local-k8s", "staging", "developer"]) {
      expect(error(stack, { ...k8s, exposeDatastores: "true" }).message, stack).toBe(
        `Invalid configuration trading:exposeDatastores on stack '${stack}': true gives every datastore a LoadBalancer Service, its port on the cluster's external address with its password the only defence: reach a datastore with 'kubectl port-forward -n <namespace> svc/<datastore> <port>' instead; LoadBalancer datastores are accepted on dev stacks (dev, dev-*) only`,
      );
    }
  });

  it("keeps it on dev stacks (the pack reports it, advisory under dev.json), and false everywhere; Docker ignores the key", () => {
    for (const stack of ["dev", "dev-alice"]) expect(parseStackConfig(stack, { ...k8s, exposeDatastores: "true" }).kubernetes.exposeDatastores, stack).toBe(true);
    expect(parseStackConfig("prod", { ...k8s, exposeDatastores: "false" }).kubernetes.exposeDatastores).toBe(false);
    expect(parseStackConfig("staging", { ...docker, exposeDatastores: "true" }).target).toBe("docker");
  });
});

describe("imagePullPolicy Never with upstream images", () => {
  it("is refused on Kubernetes: nothing would pull the vendor images or the services image pushed to the registry", () => {
    expect(error("prod", { ...k8s, imagePullPolicy: "Never" }).message).toBe(
      "Invalid configuration trading:imagePullPolicy on stack 'prod': 'Never' runs only images already imported into the nodes, and 'upstream' images (and the services image pushed to trading:registry) are pulled from their registries: use IfNotPresent (the default) or Always, or imageSource local with the images imported into the nodes (scripts/cluster/)",
    );
    // The local cluster's combination: images imported into the node.
    expect(parseStackConfig("local-k8s", { target: "kubernetes", imageSource: "local", imagePullPolicy: "Never", tlsSecretName: "ai-trading-tls" }).kubernetes.imagePullPolicy).toBe("Never");
  });
});

describe("ingressHost localhost with a certificate issuer", () => {
  it("is refused set explicitly as well as left at the default: no authority issues for this machine's own name", () => {
    for (const host of ["localhost", "trading.localhost"]) {
      // 'localhost' is the key's default too, which the CLI hands the program when the stack sets none (session 63).
      const asDefault = host === "localhost" ? " (the default, which applies when the stack sets none)" : "";
      expect(error("prod", { ...k8s, ingressHost: host }).message, host).toContain(`trading:ingressHost on stack 'prod': '${host}'${asDefault} is this machine's own name, which no certificate authority issues for`);
    }
    // An existing TLS secret (the local cluster's own CA, say) may certify any name.
    expect(parseStackConfig("local-k8s", { target: "kubernetes", imageSource: "local", imagePullPolicy: "Never", tlsSecretName: "t", ingressHost: "trading.localhost" }).kubernetes.ingressHost).toBe("trading.localhost");
  });
});

describe("smtpPort: a relay's port, not another protocol's", () => {
  it("refuses the Fetch standard's bad ports but SMTP's own: Kubernetes opens the port to every public address", () => {
    for (const port of ["22", "53", "143", "993", "6667"]) {
      expect(error("prod", { ...k8s, smtpHost: "smtp.example.com", smtpPort: port }).message, port).toBe(
        `Invalid configuration trading:smtpPort on stack 'prod': ${port} is the port of a service that speaks no SMTP (the WHATWG Fetch standard's bad ports: SSH, DNS, IMAP, ...), and on Kubernetes notification-service's egress opens it to every public address: use the relay's SMTP port (587 STARTTLS, 465 implicit TLS, 25, 2525)`,
      );
    }
    for (const port of ["25", "465", "587", "2525", "2587"]) expect(parseStackConfig("prod", { ...k8s, smtpPort: port }).smtp.port, port).toBe(Number(port));
  });
});

describe("checkConfigKeys: a key in a namespace nothing reads", () => {
  it("is refused with the nearest namespace the program reads: a misspelt namespace would leave the default in place without a word", () => {
    expect(thrown(() => checkConfigKeys("prod", ["trading:target", "tradng:exposeDatastores"], [])).message).toBe(
      "Invalid configuration tradng:exposeDatastores on stack 'prod': is in a namespace nothing of this program reads, so it would be ignored and its default apply; did you mean trading:exposeDatastores? the program reads trading:, kubernetes:, docker:, random:, pulumi: (remove it with 'pulumi config rm tradng:exposeDatastores')",
    );
    expect(thrown(() => checkConfigKeys("dev", ["Trading:replicas"], [])).message).toContain("Invalid configuration Trading:replicas on stack 'dev': is in a namespace nothing of this program reads");
    expect(thrown(() => checkConfigKeys("dev", ["kubernets:context"], [])).message).toContain("did you mean kubernetes:context?");
    const aws = thrown(() => checkConfigKeys("prod", ["aws:region"], []));
    expect(aws.message).toBe(
      "Invalid configuration aws:region on stack 'prod': is in a namespace nothing of this program reads, so it would be ignored and its default apply; the program reads trading:, kubernetes:, docker:, random:, pulumi: (remove it with 'pulumi config rm aws:region')",
    );
    expect([aws.namespace, aws.key, aws.stack]).toEqual(["aws", "region", "prod"]);
  });

  it("keeps the namespaces of the providers the program runs and the engine's own", () => {
    expect(READ_CONFIG_NAMESPACES).toEqual(["trading", "kubernetes", "docker", "random", "pulumi"]);
    expect(() => checkConfigKeys("prod", ["trading:target", "kubernetes:context", "docker:host", "random:x", "pulumi:tags"], ["kubernetes:context"])).not.toThrow();
  });
});

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----\n";

describe("credentials' shape (every stack)", () => {
  it("refuses a one-line credential holding a line break, a tab or a control character, or white space at an end, never quoting it", () => {
    const cases: [SecretConfigKey, string, string][] = [
      ["binanceApiKey", "Kx7fQ2pL9vR4tW1zY8nB3mC6hJ5sD0aE\n", "holds a line break, a tab or another control or invisible character (pasted with it?)"],
      ["telegramBotToken", "123456:AAHk9-secret\r\n", "holds a line break, a tab or another control or invisible character (pasted with it?)"],
      ["paymentWebhookSecret", "whsec_\tR4nd0mS1gn1ngS3cr3t", "holds a line break, a tab or another control or invisible character (pasted with it?)"],
      ["smtpPassword", " relay-password-2031", "has white space at its start or end (pasted with it?)"],
      ["registryPassword", "registry-token-2031 ", "has white space at its start or end (pasted with it?)"],
    ];
    for (const stack of ["dev", "prod"]) {
      for (const [key, value, problem] of cases) {
        const e = thrown(() => checkSecretValues(stack, { [key]: value }));
        expect(e.message, `${stack} ${key}`).toBe(
          `Invalid configuration trading:${key} on stack '${stack}': ${problem}, which the service would send as part of the credential; set it again (pulumi config set --secret trading:${key} <value>)`,
        );
        expect(e.message).not.toContain(value.trim());
      }
    }
    // A space inside a password (a passphrase) is the relay's business.
    expect(() => checkSecretValues("prod", { smtpPassword: "correct horse battery staple" })).not.toThrow();
  });

  it("wants the TLS pair in PEM: a CERTIFICATE block without the key beside it, and an unencrypted private key", () => {
    const cases: [Partial<Record<SecretConfigKey, string>>, string, string][] = [
      [{ tlsCertificate: "MIIBszCCAVmgAwIBAgIU" }, "tlsCertificate", "is not a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"],
      [{ tlsCertificate: PEM_KEY }, "tlsCertificate", "is not a PEM certificate"],
      [{ tlsCertificate: PEM_CERT + PEM_KEY }, "tlsCertificate", "holds a private key beside the certificate: the private key belongs in tlsPrivateKey alone"],
      [{ tlsPrivateKey: PEM_CERT }, "tlsPrivateKey", "is not a PEM private key (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)"],
      [{ tlsPrivateKey: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n" }, "tlsPrivateKey", "is an encrypted private key, which nginx would ask a passphrase for at start"],
      [{ tlsPrivateKey: "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,AB\n\nMIIE\n-----END RSA PRIVATE KEY-----\n" }, "tlsPrivateKey", "is an encrypted private key"],
    ];
    for (const stack of ["dev", "local-k8s"]) {
      for (const [values, key, problem] of cases) expect(thrown(() => checkSecretValues(stack, values)).message, `${stack} ${key}`).toContain(`trading:${key} on stack '${stack}': ${problem}`);
    }
    for (const key of [PEM_KEY, PEM_KEY.replace(/PRIVATE/g, "RSA PRIVATE"), PEM_KEY.replace(/PRIVATE/g, "EC PRIVATE")]) {
      expect(() => checkSecretValues("prod", { tlsCertificate: PEM_CERT + PEM_CERT, tlsPrivateKey: key })).not.toThrow();
    }
  });
});

describe("the program refuses them at preview, naming the key and the stack (setMocks)", () => {
  it("prod with exposeDatastores, dev with admin ports on every interface, a misspelt namespace, a pasted newline", async () => {
    await expect(runProgram("prod", { exposeDatastores: "true" })).rejects.toThrow("Invalid configuration trading:exposeDatastores on stack 'prod': true gives every datastore a LoadBalancer Service");
    await expect(runProgram("dev", { adminBindAddress: "0.0.0.0" })).rejects.toThrow("Invalid configuration trading:adminBindAddress on stack 'dev': '0.0.0.0' is every interface of the host");
    await expect(runProgram("dev", { "tradng:publishAdminPorts": "false" })).rejects.toThrow("Invalid configuration tradng:publishAdminPorts on stack 'dev': is in a namespace nothing of this program reads");
    await expect(runProgram("dev", {}, { telegramBotToken: "123456:AAHk9-token-of-the-bot\n" })).rejects.toThrow(
      "Invalid configuration trading:telegramBotToken on stack 'dev': holds a line break, a tab or another control or invisible character",
    );
  });
});
