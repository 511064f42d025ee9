/**
 * Settings stacks/config.ts refuses because they would be silently wrong at run time: each a
 * ConfigError naming the key and the stack (tests/unit/config.test.ts holds the parser's other rules).
 */
import * as path from "path";
import { describe, expect, it } from "vitest";
import { imageReferenceProblem } from "../../catalog/images";
import { upstreamImages } from "../../stacks/images";
import { isIPv4MappedIPv6 } from "../../catalog/addresses";
import { MAX_PIDS_LIMIT } from "../../catalog/sizing";
import { pidsLimit } from "../../policies/rules/pids-limit";
import { checkSecretValues, parseStackConfig, RawConfig, SecretConfigKey, secretConfigKeys } from "../../stacks/config";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

describe("trustedProxies", () => {
  it("refuses IPv4-mapped IPv6 entries: the gateway's proxy-addr applies ::ffff:0.0.0.0/96 to IPv4 clients as 0.0.0.0/0", () => {
    for (const v of ["::ffff:0.0.0.0/96", "::ffff:0:0/96", "0:0:0:0:0:ffff:0:0/96", "10.0.0.5, ::FFFF:10.0.0.0/104", "::ffff:172.28.0.2"]) {
      const e = error("prod", { ...k8s, trustedProxies: v });
      expect(e.message, v).toMatch(/^Invalid configuration trading:trustedProxies on stack 'prod': must not hold an IPv4-mapped IPv6 address .*write it as IPv4/);
    }
    expect(error("dev", { ...docker, trustedProxies: "::ffff:0:0/96" }).key).toBe("trustedProxies");
  });

  it("refuses an entry wider than the edge proxy's range (session 41): IPv4 wider than /16, IPv6 wider than /48", () => {
    for (const [stack, base] of [["prod", k8s], ["dev", docker]] as const) {
      for (const [v, wide] of [["10.0.0.0/8", "10.0.0.0/8"], ["10.244.0.5, 10.0.0.0/12", "10.0.0.0/12"], ["100.64.0.0/15", "100.64.0.0/15"], ["2001:db8::/32", "2001:db8::/32"], ["fd00::/16", "fd00::/16"], ["fd00:10::/47", "fd00:10::/47"]]) {
        expect(error(stack, { ...base, trustedProxies: v }).message, `${stack} ${v}`).toBe(
          `Invalid configuration trading:trustedProxies on stack '${stack}': '${wide}' is wider than the edge proxy (at most /16 for IPv4, /48 for IPv6): every host in it could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; list the ingress controller's pod range (e.g. 10.244.0.0/16) or the edge's addresses`,
        );
      }
    }
    // Wider still was refused before: the /0-like entries.
    for (const v of ["0.0.0.0/0", "::/0", "0.0.0.0/1"]) expect(error("prod", { ...k8s, trustedProxies: v }).key, v).toBe("trustedProxies");
  });

  it("keeps the bound's own widths, and on Docker the stack's network (dockerSubnet), its default", () => {
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: "10.96.0.0/16, fd00:10::/48" }).trustedProxies).toBe("10.96.0.0/16, fd00:10::/48");
    expect(parseStackConfig("prod", k8s).trustedProxies).toBe("10.244.0.0/16");
    expect(parseStackConfig("dev", docker).trustedProxies).toBe("172.28.0.0/24");
    expect(parseStackConfig("dev", { ...docker, dockerSubnet: "10.1.0.0/16" }).trustedProxies).toBe("10.1.0.0/16");
    expect(error("dev", { ...docker, dockerSubnet: "172.16.0.0/16", trustedProxies: "10.0.0.0/8" }).key).toBe("trustedProxies");
  });

  it("refuses a public, link-local or non-unicast IPv4 entry of /16 or narrower (session 50): that network could set X-Forwarded-For", () => {
    // Before: 8.8.0.0/16 or 203.0.113.7 was taken, and every host there chose the client address the gateway counts.
    for (const [stack, base] of [["prod", k8s], ["dev", docker]] as const) {
      for (const [v, entry, kind] of [["8.8.0.0/16", "8.8.0.0/16", "public"], ["10.244.0.0/16, 203.0.113.7", "203.0.113.7", "public"], ["172.32.0.0/16", "172.32.0.0/16", "public"], ["100.128.0.1", "100.128.0.1", "public"], ["169.254.169.254", "169.254.169.254", "link-local (the cloud metadata service's range)"], ["224.0.0.0/16", "224.0.0.0/16", "no unicast range"]]) {
        expect(error(stack, { ...base, trustedProxies: v }).message, `${stack} ${v}`).toBe(
          `Invalid configuration trading:trustedProxies on stack '${stack}': '${entry}' is ${kind}, no edge proxy's range: every host there could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; the edge proxy (the stack's Nginx, the ingress controller's pods) sends from 10/8, 172.16/12, 192.168/16, 100.64/10 or loopback`,
        );
      }
    }
  });

  it("keeps private, CGNAT and loopback IPv4 entries, and unique local, link-local and loopback IPv6 ones", () => {
    const kept = "10.1.0.0/16, 172.31.0.0/16, 192.168.5.0/24, 100.64.0.0/16, 100.127.3.4, 127.0.0.1, fd12:3456::/48, fe80::/64, ::1";
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: kept })).toMatchObject({ trustedProxies: kept, trustGlobalIPv6Proxies: false });
  });

  it("refuses a global IPv6 entry without the named opt-in trustGlobalIPv6Proxies (session 51), and a non-unicast one always", () => {
    // Before: any public /48 was taken (IPv6 pod networks may be global: EKS IPv6, dual-stack), so any internet /48 was too.
    for (const [stack, base] of [["prod", k8s], ["dev", docker]] as const) {
      for (const [v, entry] of [["2600:1f14:abc::/48", "2600:1f14:abc::/48"], ["fd00:10::/64, 2001:db8::1", "2001:db8::1"]]) {
        expect(error(stack, { ...base, trustedProxies: v }).message, `${stack} ${v}`).toBe(
          `Invalid configuration trading:trustedProxies on stack '${stack}': '${entry}' is global IPv6 unicast: every host of it could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; the edge proxy sends from unique local fc00::/7, link-local fe80::/10 or loopback ::1 unless the cluster's pod network is global (EKS IPv6, dual-stack clusters): if this is it, set trading:trustGlobalIPv6Proxies true`,
        );
        // On Docker the list must also cover dockerSubnet, where the edge gets its address (session 65).
        const taken = stack === "dev" ? `172.28.0.0/24, ${v}` : v;
        expect(parseStackConfig(stack, { ...base, trustedProxies: taken, trustGlobalIPv6Proxies: "true" })).toMatchObject({ trustedProxies: taken, trustGlobalIPv6Proxies: true });
      }
      for (const v of ["ff02::/64", "::/128", "100::1"]) {
        expect(error(stack, { ...base, trustedProxies: v, trustGlobalIPv6Proxies: "true" }).message, `${stack} ${v}`).toBe(
          `Invalid configuration trading:trustedProxies on stack '${stack}': '${v}' is no unicast range (multicast, unspecified or reserved), no edge proxy's range: the edge proxy sends from unique local fc00::/7, link-local fe80::/10 or loopback ::1 (or a global pod network)`,
        );
      }
    }
  });

  it("keeps IPv4 and IPv6 proxies", () => {
    expect(parseStackConfig("prod", { ...k8s, trustedProxies: "10.244.0.0/16, fd00:10::/64, fe80::1" }).trustedProxies).toBe("10.244.0.0/16, fd00:10::/64, fe80::1");
    for (const a of ["::ffff:1.2.3.4", "0:0:0:0:0:ffff:102:304", "::FFFF:a:b"]) expect(isIPv4MappedIPv6(a), a).toBe(true);
    for (const a of ["::ffff:0", "::ffff:0:0:0", "::1.2.3.4", "fe80::1%eth0", "64:ff9b::1.2.3.4", "1.2.3.4", "x"]) expect(isIPv4MappedIPv6(a), a).toBe(false);
  });
});

describe("namespace", () => {
  it("refuses a namespace another owner has: the cluster's, the ingress controller's, cert-manager's", () => {
    const cases: [RawConfig, string][] = [
      [{ namespace: "default" }, "the cluster"],
      [{ namespace: "kube-system" }, "the cluster"],
      [{ namespace: "kube-public" }, "the cluster"],
      [{ namespace: "kube-node-lease" }, "the cluster"],
      [{ namespace: "ingress-nginx" }, "the ingress controller (trading:ingressControllerNamespace)"],
      [{ namespace: "traefik", ingressControllerNamespace: "traefik" }, "the ingress controller"],
      [{ namespace: "ingress-nginx", ingressControllerNamespace: "traefik" }, "the NGINX ingress controller"],
      [{ namespace: "cert-manager" }, "cert-manager"],
    ];
    for (const [raw, owner] of cases) {
      const e = error("prod", { ...k8s, ...raw });
      expect(e.message, raw.namespace).toContain(`Invalid configuration trading:namespace on stack 'prod': '${raw.namespace}' belongs to ${owner}`);
    }
  });

  it("takes a namespace of the platform's own", () => {
    expect(parseStackConfig("prod", { ...k8s, namespace: "trading-prod" }).kubernetes.namespace).toBe("trading-prod");
    expect(parseStackConfig("prod", { ...k8s, namespace: "kubernetes-apps" }).kubernetes.namespace).toBe("kubernetes-apps");
  });
});

describe("ingressControllerNamespace and ingressControllerPodLabels (session 41)", () => {
  it("refuses a cluster namespace (kube-system, kube-public, kube-node-lease, default) without the controller's pod labels: every pod there would reach the gateway", () => {
    for (const ns of ["kube-system", "kube-public", "kube-node-lease", "default"]) {
      expect(error("prod", { ...k8s, ingressControllerNamespace: ns }).message, ns).toBe(
        `Invalid configuration trading:ingressControllerNamespace on stack 'prod': '${ns}' holds the cluster's own pods too, and the gateway admits every pod of the controller's namespace: set the controller's pod labels (pulumi config set trading:ingressControllerPodLabels app.kubernetes.io/name=<controller>,...) or run the controller in a namespace of its own`,
      );
    }
  });

  it("takes a cluster namespace with the controller's pod labels, and a dedicated namespace with or without them", () => {
    const labels = "app.kubernetes.io/name=rke2-ingress-nginx, app.kubernetes.io/component=controller";
    expect(parseStackConfig("prod", { ...k8s, ingressControllerNamespace: "kube-system", ingressControllerPodLabels: labels }).kubernetes).toMatchObject({
      ingressControllerNamespace: "kube-system",
      ingressControllerPodLabels: { "app.kubernetes.io/name": "rke2-ingress-nginx", "app.kubernetes.io/component": "controller" },
    });
    const plain = parseStackConfig("prod", k8s).kubernetes;
    expect(plain.ingressControllerNamespace).toBe("ingress-nginx");
    expect(plain.ingressControllerPodLabels).toBeUndefined();
    expect(parseStackConfig("prod", { ...k8s, ingressControllerPodLabels: "app=traefik" }).kubernetes.ingressControllerPodLabels).toEqual({ app: "traefik" });
  });

  it("refuses pod labels that are no equality selectors a Kubernetes API server takes", () => {
    for (const [v, item] of [
      ["app", "app"],
      ["app=", "app="],
      ["app=a=b", "app=a=b"],
      ["app==x", "app==x"],
      ["app!=x", "app!=x"],
      ["app in (x)", "app in (x)"],
      ["-app=x", "-app=x"],
      ["app=x-", "app=x-"],
      ["Example.COM/app=x", "Example.COM/app=x"],
      ["app=x,", ""],
      [`app=${"v".repeat(64)}`, `app=${"v".repeat(64)}`],
    ]) {
      const e = error("prod", { ...k8s, ingressControllerPodLabels: v });
      expect(e.message, v).toMatch(/^Invalid configuration trading:ingressControllerPodLabels on stack 'prod': must be label selectors key=value joined by commas/);
      expect(e.message, v).toContain(`got ${item.length > 80 ? "" : `'${item}'`}`);
    }
    expect(error("prod", { ...k8s, ingressControllerPodLabels: "app=x, app=y" }).message).toBe(
      "Invalid configuration trading:ingressControllerPodLabels on stack 'prod': names the label 'app' twice",
    );
  });
});

describe("ingressHost", () => {
  const { ingressHost: _set, ...k8sNoHost } = k8s;

  it("is required on Kubernetes with a cert-manager issuer: the default 'localhost' is a name no CA issues for", () => {
    const refusal =
      "Invalid configuration trading:ingressHost on stack 'prod': 'localhost' (the default, which applies when the stack sets none) is this machine's own name, which no certificate authority issues for: with certIssuer, cert-manager's order would fail and the Ingress serve no trusted certificate (pulumi config set trading:ingressHost <public DNS name>)";
    // Unset, as a test hands it (no value), and as the CLI hands it (session 63: pulumi 3.248 passes the program
    // Pulumi.yaml's declared default for a key the stack does not set, so the program sees 'localhost').
    expect(error("prod", k8sNoHost).message).toBe(refusal);
    expect(error("prod", { ...k8sNoHost, ingressHost: "localhost" }).message).toBe(refusal);
    // Set blank, it is the stack's own mistake (session 62): refused as such, not taken for the default.
    expect(error("prod", { ...k8sNoHost, ingressHost: "  " }).message).toBe(
      `Invalid configuration trading:ingressHost on stack 'prod': is set but blank: give it a value, or remove it for its default, "localhost" (pulumi config rm trading:ingressHost)`,
    );
    // The stack's own certificate (the local cluster's): the host is the operator's choice, the default kept.
    expect(parseStackConfig("prod", { ...k8sNoHost, certIssuer: undefined, tlsSecretName: "ai-trading-tls" }).kubernetes.ingressHost).toBe("localhost");
    // Docker's edge names itself after it, no issuer involved.
    expect(parseStackConfig("dev", docker).kubernetes.ingressHost).toBe("localhost");
  });

  it("refuses an IP address on Kubernetes: the API server takes only a DNS name as an Ingress host", () => {
    for (const host of ["10.0.0.1", "203.0.113.7"]) {
      expect(error("prod", { ...k8s, ingressHost: host }).message).toBe(
        `Invalid configuration trading:ingressHost on stack 'prod': must be a DNS name: the API server refuses an IP address as an Ingress host, got '${host}'`,
      );
    }
    expect(parseStackConfig("prod", { ...k8s, ingressHost: "trading.example.com" }).kubernetes.ingressHost).toBe("trading.example.com");
  });
});

describe("certIssuer (session 41)", () => {
  it("refuses a staging or test ACME issuer on every stack but dev: its certificates no client trusts", () => {
    for (const stack of ["prod", "local-k8s"]) {
      for (const issuer of ["letsencrypt-staging", "letsencryptstaging", "acme-staging-v02", "le-stg", "letsencrypt-test", "test-issuer", "issuer.testing", "fake-le"]) {
        expect(error(stack, { ...k8s, certIssuer: issuer }).message, `${stack} ${issuer}`).toBe(
          `Invalid configuration trading:certIssuer on stack '${stack}': '${issuer}' names a staging or test issuer (e.g. Let's Encrypt staging), whose certificates no browser or client trusts: use the production issuer (e.g. letsencrypt-prod) on this stack; staging issuers are accepted on dev stacks (dev, dev-*) only`,
        );
      }
    }
  });

  it("keeps a staging issuer on dev stacks and production issuers everywhere", () => {
    for (const stack of ["dev", "dev-k8s"]) expect(parseStackConfig(stack, { ...k8s, certIssuer: "letsencrypt-staging" }).kubernetes.certIssuer).toBe("letsencrypt-staging");
    for (const issuer of ["letsencrypt", "letsencrypt-prod", "latest-issuer", "contest.example", "zerossl"]) {
      expect(parseStackConfig("prod", { ...k8s, certIssuer: issuer }).kubernetes.certIssuer, issuer).toBe(issuer);
    }
  });
});

// Session 42's policy hunt: debug or trace logs on a production cluster passed (session 41 had checked and left it:
// pino's redaction covers credentials, but verbose levels log request detail info leaves out).
describe("logLevel (session 42)", () => {
  it("refuses debug and trace on Kubernetes on every stack but dev, naming the key, the stack and the opt-in", () => {
    for (const stack of ["prod", "local-k8s"]) {
      for (const level of ["debug", "trace"]) {
        expect(error(stack, { ...k8s, logLevel: level }).message, `${stack} ${level}`).toBe(
          `Invalid configuration trading:logLevel on stack '${stack}': '${level}' logs request detail the info level leaves out (bodies, headers, identifiers) to every reader of the cluster's logs: use info on this stack, or, for the time of an investigation, set trading:allowVerboseLogs true (and list the workloads in the policy pack's no-insecure-runtime-flags verboseLogWorkloads); verbose levels are accepted on dev stacks (dev, dev-*)`,
        );
      }
    }
    // A malformed opt-in is refused as every boolean is.
    expect(error("prod", { ...k8s, logLevel: "debug", allowVerboseLogs: "yes" }).key).toBe("allowVerboseLogs");
  });

  it("keeps debug with the opt-in, on dev stacks and on Docker, and every quieter level everywhere", () => {
    expect(parseStackConfig("prod", { ...k8s, logLevel: "debug", allowVerboseLogs: "true" }).logLevel).toBe("debug");
    for (const stack of ["dev", "dev-k8s"]) expect(parseStackConfig(stack, { ...k8s, logLevel: "trace" }).logLevel, stack).toBe("trace");
    expect(parseStackConfig("staging", { ...docker, logLevel: "debug" }).logLevel).toBe("debug");
    for (const level of ["info", "warn", "error", "fatal"]) expect(parseStackConfig("prod", { ...k8s, logLevel: level }).logLevel, level).toBe(level);
    expect(parseStackConfig("prod", k8s).logLevel).toBe("info");
  });
});

describe("cron schedules (backupSchedule, mlRetrainSchedule)", () => {
  it("refuses day-of-week 7, which croner reads as Sunday and a Kubernetes CronJob refuses", () => {
    for (const v of ["0 0 * * 7", "0 0 * * 5-7", "0 0 * * 1,7", "0 0 * * 7/2"]) {
      expect(error("prod", { ...k8s, backupSchedule: v }).message, v).toContain(
        "Invalid configuration trading:backupSchedule on stack 'prod': day-of-week must be 0-6 (0 = Sunday) or a name: Kubernetes CronJobs refuse 7",
      );
      expect(error("dev", { ...docker, mlRetrainSchedule: v }).key, v).toBe("mlRetrainSchedule");
    }
    // A step's size is no day: every 7th day from Sunday is Sunday.
    expect(parseStackConfig("prod", { ...k8s, backupSchedule: "0 0 * * */7" }).kubernetes.backupSchedule).toBe("0 0 * * */7");
    expect(parseStackConfig("prod", { ...k8s, backupSchedule: "0 0 * * 0,6" }).kubernetes.backupSchedule).toBe("0 0 * * 0,6");
    expect(parseStackConfig("prod", { ...k8s, backupSchedule: "0 0 * * SUN" }).kubernetes.backupSchedule).toBe("0 0 * * SUN");
  });

  it("refuses a schedule firing at most once in 400 days (or never) naming the key, where the alert rules threw a plain Error", () => {
    for (const [key, v] of [["backupSchedule", "0 0 29 2 *"], ["mlRetrainSchedule", "0 0 30 2 *"]]) {
      expect(error("prod", { ...k8s, [key]: v }).message, v).toBe(
        `Invalid configuration trading:${key} on stack 'prod': fires at most once in 400 days (or never): a job needs an interval for its overdue alert, got '${v}'`,
      );
    }
    expect(parseStackConfig("prod", { ...k8s, backupSchedule: "0 0 1 1 *" }).kubernetes.backupSchedule).toBe("0 0 1 1 *");
  });

  it("refuses a schedule whose closest ticks leave a run less than it needs: backups 30 min (ticks 1 h apart), retraining 10 min (20 min apart)", () => {
    expect(error("prod", { ...k8s, backupSchedule: "* * * * *" }).message).toBe(
      "Invalid configuration trading:backupSchedule on stack 'prod': ticks 60 s apart at the closest, so each run would be stopped after 30 s (half the gap), less than the 1800 s one needs: space the ticks at least 3600 s apart, got '* * * * *'",
    );
    // Twice a day, but 08:00 and 08:30: the closest gap counts.
    expect(error("prod", { ...k8s, backupSchedule: "0,30 8 * * *" }).key).toBe("backupSchedule");
    expect(parseStackConfig("prod", { ...k8s, backupSchedule: "0 * * * *" }).kubernetes.backupSchedule).toBe("0 * * * *");
    expect(error("dev", { ...docker, mlRetrainSchedule: "*/10 * * * *" }).message).toContain("less than the 600 s one needs");
    expect(parseStackConfig("dev", { ...docker, mlRetrainSchedule: "*/20 * * * 1-5" }).jobSchedules.mlRetrainSchedule).toBe("*/20 * * * 1-5");
  });
});

describe("renderYamlTo (session 38)", () => {
  it("refuses a folder of the project git does not ignore: the rendered Secrets are plain text, ready for the next 'git add'", () => {
    for (const folder of ["out", "manifests/prod", "./k8s", "rendered/../out", "out/rendered/.."]) {
      const e = error("prod", { ...k8s, renderYamlTo: folder });
      expect(e.message, folder).toMatch(
        /^Invalid configuration trading:renderYamlTo on stack 'prod': '.*' is a folder of the project that git does not ignore, .* use rendered\/<name> \(ignored by .gitignore\)$/,
      );
    }
  });

  // An absolute path elsewhere and a path out of the project were kept until session 65 (config-red-team-65b.test.ts).
  it("keeps the git-ignored rendered/ folder (at any depth) of the project, by a relative or an absolute path", () => {
    for (const folder of ["rendered", "rendered/prod", "./rendered/prod", "build/rendered/x", path.join(__dirname, "..", "..", "rendered", "prod")]) {
      expect(parseStackConfig("prod", { ...k8s, renderYamlTo: folder }).kubernetes.renderYamlTo, folder).toBe(folder);
    }
  });
});

describe("smtpHost (session 40)", () => {
  it("refuses an address that is no mail relay (cloud metadata, link-local, loopback, unspecified, multicast), where the relay login would go", () => {
    const cases: Array<[string, string]> = [
      ["169.254.169.254", "the cloud metadata address (the node's cloud credentials)"],
      ["100.100.100.200", "the cloud metadata address (the node's cloud credentials)"],
      ["169.254.10.1", "link-local (the cloud metadata service's range)"],
      ["127.0.0.1", "loopback (the notification-service container itself)"],
      ["LocalHost", "loopback (the notification-service container itself)"],
      ["relay.localhost", "loopback (the notification-service container itself)"],
      ["0.0.0.0", "the unspecified address"],
      ["224.0.0.1", "multicast or broadcast"],
      ["255.255.255.255", "multicast or broadcast"],
    ];
    for (const stack of ["prod", "dev"]) {
      for (const [host, what] of cases) {
        const config = stack === "prod" ? { ...k8s, smtpHost: host } : { ...docker, smtpHost: host };
        expect(error(stack, config).message, `${stack} ${host}`).toBe(
          `Invalid configuration trading:smtpHost on stack '${stack}': '${host}' is ${what}, no mail relay: notification-service would send the relay login (smtpUsername, smtpPassword) there; give the relay's host name or its address on the network`,
        );
      }
    }
  });

  it("keeps a relay's host name, a public address and a private one", () => {
    for (const host of ["smtp.example.com", "203.0.113.25", "10.20.30.40", "100.64.1.1", "localhost-relay.example.com"]) {
      expect(parseStackConfig("prod", { ...k8s, smtpHost: host }).smtp.host, host).toBe(host);
    }
  });
});

describe("dockerSubnet (session 40)", () => {
  it("refuses a subnet outside the private ranges: the engine routes it to its bridge, capturing public, loopback or metadata addresses", () => {
    for (const subnet of ["8.8.8.0/24", "169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/8", "100.64.0.0/10", "172.32.0.0/16", "192.169.0.0/16", "172.0.0.0/8"]) {
      expect(error("dev", { ...docker, dockerSubnet: subnet }).message, subnet).toBe(
        `Invalid configuration trading:dockerSubnet on stack 'dev': must lie inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16): the engine routes it to its bridge on the host, so a public, loopback or link-local range (the cloud metadata address) would be captured by the containers, got '${subnet}'`,
      );
    }
  });

  it("refuses a subnet wider than /16 (session 42): it is the gateway's default TRUST_PROXY on docker, which the service kit refuses wider than the edge proxy", () => {
    // Before: any private size was taken (10.0.0.0/8 included) and became TRUST_PROXY, which the kit now refuses at start.
    for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
      for (const subnet of ["10.0.0.0/8", "172.16.0.0/12", "10.0.0.0/15", "172.16.0.0/14"]) {
        expect(error(stack, { ...base, dockerSubnet: subnet }).message, `${stack} ${subnet}`).toBe(
          `Invalid configuration trading:dockerSubnet on stack '${stack}': '${subnet}' is wider than /16: the gateway trusts X-Forwarded-For from the stack's network (its default trustedProxies) and refuses to start with a trusted range wider than the edge proxy's; the stack needs no more than a /16 (e.g. 172.28.0.0/24, the default)`,
        );
      }
    }
  });

  // Narrower than a /26 holds fewer addresses than dev's containers (session 65: tests/unit/config-red-team-65.test.ts; a /28 was kept here).
  it("keeps private subnets of /16 or narrower, the default among them", () => {
    for (const subnet of ["172.28.0.0/24", "10.0.0.0/16", "172.16.0.0/16", "172.31.255.0/24", "192.168.0.0/16", "192.168.7.0/26"]) {
      expect(parseStackConfig("dev", { ...docker, dockerSubnet: subnet }).docker.subnet, subnet).toBe(subnet);
    }
  });
});

describe("dockerPidsLimit* (session 41)", () => {
  it("refuses a limit above the policy pack's default maxPidsLimit, which pids-limit would refuse after the preview", () => {
    for (const key of ["dockerPidsLimitStateless", "dockerPidsLimitStateful", "dockerPidsLimitJob"]) {
      for (const v of ["32769", "4194304"]) {
        expect(error("dev", { ...docker, [key]: v }).message, `${key} ${v}`).toBe(
          `Invalid configuration trading:${key} on stack 'dev': must be between 16 and 32768 (the policy pack's pids-limit refuses a container above its default maxPidsLimit, 32768: above it a limit no longer bounds a fork bomb on the host), got ${v}`,
        );
      }
      expect(parseStackConfig("dev", { ...docker, [key]: "32768" }).docker.pidsLimits, key).toMatchObject({ [key.slice("dockerPidsLimit".length).toLowerCase()]: 32768 });
    }
  });

  it("shares one constant with the pack: the pack's default maximum is the config's bound", () => {
    const schema = pidsLimit.configSchema as { properties: { maxPidsLimit: { default: number } } };
    expect(schema.properties.maxPidsLimit.default).toBe(MAX_PIDS_LIMIT);
    expect(MAX_PIDS_LIMIT).toBe(32768);
  });
});

describe("adminBindAddress (session 41)", () => {
  it("refuses an octet with a leading zero: the engine cannot parse it and publishes the admin ports on every interface", () => {
    for (const address of ["127.000.0.1", "127.0.0.01", "010.0.0.1"]) {
      expect(error("dev", { ...docker, adminBindAddress: address }).message, address).toBe(
        `Invalid configuration trading:adminBindAddress on stack 'dev': must be an IPv4 address (no leading zeros), got '${address}'`,
      );
    }
  });

  it("keeps plain IPv4 addresses, zeros as whole octets included", () => {
    for (const address of ["127.0.0.1", "127.0.0.10", "10.0.0.100", "10.0.0.0"]) {
      expect(parseStackConfig("dev", { ...docker, adminBindAddress: address }).docker.adminBindAddress, address).toBe(address);
    }
    // Every interface is refused while the admin ports are published (session 50, tests/unit/config-exposure.test.ts).
    expect(parseStackConfig("dev", { ...docker, adminBindAddress: "0.0.0.0", publishAdminPorts: "false" }).docker.adminBindAddress).toBe("0.0.0.0");
  });
});

describe("notifyWebhookPorts (session 42)", () => {
  it("refuses what is no list of TCP ports, and the ports of services that speak no HTTP, naming the key and the stack", () => {
    const cases: [string, string][] = [
      ["443,", "must be a comma-separated list of TCP ports, e.g. 443 or 443,8443, got '443,'"],
      ["https", "'https' is not a TCP port (1 to 65535)"],
      ["443,65536", "'65536' is not a TCP port (1 to 65535)"],
      ["0", "'0' is not a TCP port (1 to 65535)"],
      ["443,443", "lists 443 twice"],
    ];
    for (const [ports, why] of cases) expect(error("prod", { ...k8s, notifyWebhookPorts: ports }).message, ports).toBe(`Invalid configuration trading:notifyWebhookPorts on stack 'prod': ${why}`);
    for (const port of [22, 25, 465, 587, 993, 6667]) {
      expect(error("dev", { ...docker, notifyWebhookPorts: `443,${port}` }).message, String(port)).toBe(
        `Invalid configuration trading:notifyWebhookPorts on stack 'dev': ${port} is the port of a service that speaks no HTTP (the WHATWG Fetch standard's bad ports: SSH, SMTP, IMAP, DNS, ...): a webhook's POST there would read as that service's commands; use 443 or another HTTPS port`,
      );
    }
  });

  it("refuses a datastore's or cluster service's port (session 50): a user's webhook URL would probe hosts for it", () => {
    // Before: 5432, 6379, 2379, 10250, ... were taken, and on Kubernetes the egress opened them to every public address.
    for (const [port, name] of [[5432, "PostgreSQL"], [6379, "Redis/Dragonfly"], [9092, "Kafka/Redpanda"], [8123, "ClickHouse (HTTP)"], [2379, "etcd"], [6443, "the Kubernetes API server"], [10250, "the kubelet"], [9090, "Prometheus"], [3000, "Grafana"], [8080, "Weaviate"]] as const) {
      expect(error("prod", { ...k8s, notifyWebhookPorts: `443,${port}` }).message, String(port)).toBe(
        `Invalid configuration trading:notifyWebhookPorts on stack 'prod': ${port} is ${name}'s port, a datastore's or cluster service's no webhook receiver runs on (catalog/addresses.ts INTERNAL_SERVICE_PORTS): a user's webhook URL could probe hosts for it; use 443 or another HTTPS port (8443, 9443)`,
      );
    }
    expect(error("dev", { ...docker, notifyWebhookPorts: "8529" }).key).toBe("notifyWebhookPorts");
  });

  it("takes HTTPS ports, 443 when unset", () => {
    expect(parseStackConfig("dev", docker).notifyWebhookPorts).toEqual([443]);
    expect(parseStackConfig("prod", { ...k8s, notifyWebhookPorts: " 443 , 8443,9443" }).notifyWebhookPorts).toEqual([443, 8443, 9443]);
  });
});

describe("gateway rate limit (session 39)", () => {
  it("refuses an absurd rate limit naming the key, the stack and the allowed range", () => {
    const cases: [RawConfig, string][] = [
      // 1,000,000 requests a second: no limit at all.
      [{ rateLimitMaxRequests: "1000000", rateLimitWindowMs: "1000" }, "trading:rateLimitMaxRequests on stack 'prod': allows 1000000 requests a second (1000000 requests in 1000 ms), more than the whole platform serves: at most 1000 a second on average, i.e. at most 1000 in a window of 1000 ms"],
      [{ rateLimitMaxRequests: "1000000" }, "trading:rateLimitMaxRequests on stack 'prod': allows 1111 requests a second"],
      [{ rateLimitMaxRequests: "0" }, "trading:rateLimitMaxRequests on stack 'prod': must be between 10 and 1000000, got 0"],
      [{ rateLimitMaxRequests: "-5" }, "trading:rateLimitMaxRequests on stack 'prod': must be between 10 and 1000000, got -5"],
      [{ rateLimitMaxRequests: "1" }, "trading:rateLimitMaxRequests on stack 'prod': must be between 10 and 1000000, got 1"],
      [{ rateLimitMaxRequests: "2.5" }, "trading:rateLimitMaxRequests on stack 'prod': must be an integer, got '2.5'"],
      [{ rateLimitWindowMs: "0" }, "trading:rateLimitWindowMs on stack 'prod': must be between 1000 and 3600000, got 0"],
      [{ rateLimitWindowMs: "86400000" }, "trading:rateLimitWindowMs on stack 'prod': must be between 1000 and 3600000, got 86400000"],
      [{ rateLimitWindowMs: "0.5" }, "trading:rateLimitWindowMs on stack 'prod': must be an integer, got '0.5'"],
      // Ten requests an hour: a session cannot load its pages.
      [{ rateLimitMaxRequests: "10", rateLimitWindowMs: "3600000" }, "trading:rateLimitMaxRequests on stack 'prod': allows less than one request a minute on average (10 requests in 3600000 ms): at least 60 in a window of 3600000 ms"],
    ];
    for (const [raw, message] of cases) expect(error("prod", { ...k8s, ...raw }).message, JSON.stringify(raw)).toContain(`Invalid configuration ${message}`);
    expect(error("dev", { ...docker, rateLimitMaxRequests: "500000", rateLimitWindowMs: "60000" }).key).toBe("rateLimitMaxRequests");
  });

  it("keeps the guide's limit (100 in 15 min), the defaults, and the bounds themselves", () => {
    expect(parseStackConfig("prod", k8s).rateLimit).toEqual({ windowMs: 900_000, maxRequests: 100 });
    expect(parseStackConfig("prod", { ...k8s, rateLimitMaxRequests: "100000" }).rateLimit.maxRequests).toBe(100_000); // the local cluster's e2e
    expect(parseStackConfig("prod", { ...k8s, rateLimitMaxRequests: "1000", rateLimitWindowMs: "1000" }).rateLimit).toEqual({ windowMs: 1_000, maxRequests: 1_000 });
    expect(parseStackConfig("prod", { ...k8s, rateLimitMaxRequests: "60", rateLimitWindowMs: "3600000" }).rateLimit).toEqual({ windowMs: 3_600_000, maxRequests: 60 });
  });
});

describe("checkSecretValues", () => {
  it("refuses a credential set blank, which would count as set (live trading's keys) and fail at its first use", () => {
    for (const key of secretConfigKeys) {
      for (const blank of ["", "  ", "\n"]) {
        expect(() => checkSecretValues("prod", { [key]: blank }), `${key}=${JSON.stringify(blank)}`).toThrow(
          `Invalid configuration trading:${key} on stack 'prod': is set but blank: set the credential (pulumi config set --secret trading:${key} <value>) or remove the key (pulumi config rm trading:${key})`,
        );
      }
    }
    expect(() => checkSecretValues("prod", { binanceApiKey: "k", binanceSecretKey: "s", telegramBotToken: undefined })).not.toThrow();
  });

  it("refuses the deployment guide's placeholders and well-known weak values on prod and every stack but dev, naming the key and the stack (session 39)", () => {
    const guide: [SecretConfigKey, string, string][] = [
      ["binanceApiKey", "your_binance_api_key_here", "your_binance_api_key_here"],
      ["binanceSecretKey", "YOUR_BINANCE_SECRET_KEY_HERE", "your_binance_secret_key_here"],
      ["telegramBotToken", "your_telegram_bot_token_here", "your_telegram_bot_token_here"],
      ["registryPassword", "admin123", "admin123"],
      ["smtpPassword", "ai_trading_secure_pass_2024", "ai_trading_secure_pass_2024"],
      ["paymentWebhookSecret", "whsec_ai_trading_jwt_super_secret_key_change_in_production_2024", "ai_trading_jwt_super_secret_key_change_in_production_2024"],
    ];
    for (const stack of ["prod", "local-k8s"]) {
      for (const [key, value, published] of guide) {
        expect(() => checkSecretValues(stack, { [key]: value }), `${stack} ${key}`).toThrow(
          `Invalid configuration trading:${key} on stack '${stack}': holds the deployment guide's published placeholder "${published}", which anyone can try: set the real credential (pulumi config set --secret trading:${key} <value>); placeholders are accepted on the dev stack only`,
        );
      }
      for (const [key, value] of [["smtpPassword", "password"], ["paymentProcessorApiKey", "ChangeMe"], ["registryPassword", " letmein "], ["binanceApiKey", "123456"]] as const) {
        let thrown: Error | undefined;
        try {
          checkSecretValues(stack, { [key]: value });
        } catch (e) {
          thrown = e as Error;
        }
        expect(thrown?.message, `${stack} ${key}`).toBe(
          `Invalid configuration trading:${key} on stack '${stack}': is a weak, well-known value, which anyone can try: set the real credential (pulumi config set --secret trading:${key} <value>); placeholders are accepted on the dev stack only`,
        );
        // A weak value is well known but not echoed.
        expect(thrown?.message).not.toContain(value.trim());
      }
    }
  });

  it("keeps dev usable: the placeholders pass there (the pack reports them, advisory under dev.json); real-looking values pass everywhere", () => {
    for (const stack of ["dev", "dev-alice"]) {
      expect(() => checkSecretValues(stack, { binanceApiKey: "your_binance_api_key_here", binanceSecretKey: "your_binance_secret_key_here", registryPassword: "admin123", smtpPassword: "password" })).not.toThrow();
    }
    expect(() => checkSecretValues("dev", { smtpPassword: "" })).toThrow("trading:smtpPassword on stack 'dev': is set but blank");
    expect(() => checkSecretValues("prod", { binanceApiKey: "k-live", smtpPassword: "smtp-pw-1", registryPassword: "pw", paymentProcessorApiKey: "sk_live_51Habc", telegramBotToken: "123:tg-token-abcdefghijklmnopqrstuvwxyz" })).not.toThrow();
    // Only the whole value is judged weak: a password containing a weak word is the user's call.
    expect(() => checkSecretValues("prod", { smtpPassword: "password-of-the-relay-2031" })).not.toThrow();
  });
});

describe("image overrides (trading:<datastore>Image) follow Docker's reference grammar", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  it("refuses references that look pinned but no engine takes", () => {
    const cases: [string, string][] = [
      ["postgres:-1", "has a malformed tag"],
      ["postgres:15:16", "has a malformed tag"],
      ["postgres:" + "1".repeat(200), "has a malformed tag"],
      [`postgres:..@${digest}`, "has a malformed tag"],
      ["library/Postgres:15", "has a malformed repository path"],
      ["a/../b:1", "has a malformed repository path"],
      ["a//b:1", "has a malformed repository path"],
      ["-registry.example.com/postgres:15", "has a malformed registry host"],
      [digest, "is a bare image ID"],
      [`${"a".repeat(256)}:1`, "has a repository name of 256 characters"],
    ];
    for (const [ref, problem] of cases) {
      for (const [stack, base] of [["dev", docker], ["prod", k8s]] as const) {
        const e = error(stack, { ...base, postgresImage: ref });
        expect(e.message, ref).toMatch(new RegExp(`^Invalid configuration trading:postgresImage on stack '${stack}': is not a valid image reference: '.*'( \\(\\d+ characters\\))? ${problem}`));
      }
    }
  });

  it("accepts registry hosts with ports, localhost, nested paths, separators, tags with digests", () => {
    for (const ref of ["registry.example.com:5000/mirror/postgres:16.4", "localhost/ai-trading/postgres:16", "localhost:5000/pg:1", "my_org/pg__x/a-b--c.d:v1.2_3", `postgres:16@${digest}`, `ghcr.io/org/pg@${digest}`, "postgres:" + "1".repeat(128)]) {
      expect(parseStackConfig("dev", { ...docker, postgresImage: ref }).datastores.postgres.image, ref).toBe(ref);
    }
    // The pinned defaults an override replaces are references by the same grammar.
    for (const image of Object.values(upstreamImages)) expect(imageReferenceProblem(image.ref), image.ref).toBeUndefined();
  });
});
