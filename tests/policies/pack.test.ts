import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { PACK_NAME, policies } from "../../policies/all";
import { FLOATING_TAGS, qualifiedRepository } from "../../catalog/images";
import { catalog } from "../../catalog/services";
import { internetEgressOf } from "../../components/internet-egress";
import { EDGE_ERRORS_WORKLOAD } from "../../components/edge/error-pages";
import { ConfigError, parseStackConfig } from "../../stacks/config";
import { upstreamImages } from "../../stacks/images";
import { stackFileConfig } from "../helpers/program";
import { dockerContainer, dockerPrometheus, prodStack, remoteImage, replace } from "./fixtures";
import { loadConfig, mandatory, policyNames, reconcileConfig, runPack, UNKNOWN } from "./run-pack";

const policiesDir = path.join(__dirname, "..", "..", "policies");
const envSensitive = policies.filter((p) => p.configSchema?.properties?.environment).map((p) => p.name).sort();

describe("pack assembly", () => {
    it("has one module per policy under policies/rules, all assembled, names unique", () => {
        const files = fs.readdirSync(path.join(policiesDir, "rules")).filter((f) => f.endsWith(".ts")).map((f) => f.replace(/\.ts$/, "")).sort();
        expect(policies.map((p) => p.name).sort()).toEqual(files);
        expect(new Set(policies.map((p) => p.name)).size).toBe(policies.length);
        expect(PACK_NAME).toBe("trading-hardening");
        for (const p of policies) {
            expect(p.description.length, p.name).toBeGreaterThan(40);
            expect(p.severity, p.name).toBeDefined();
        }
    });

    it("index.ts only assembles the pack", () => {
        const index = fs.readFileSync(path.join(policiesDir, "index.ts"), "utf8");
        expect(index).toContain("new PolicyPack(PACK_NAME, {");
        expect(index.match(/^import .*$/gm)).toEqual([
            "import { PolicyPack } from \"@pulumi/policy\";",
            "import { PACK_NAME, policies } from \"./all\";",
        ]);
    });
});

describe("policy config files", () => {
    it("dev.json: every policy advisory, prod-only policies told environment dev", () => {
        const cfg = reconcileConfig(loadConfig("dev"));
        for (const p of policies) expect(cfg.get(p.name)!.level, p.name).toBe("advisory");
        for (const name of envSensitive) expect(cfg.get(name)!.props.environment, name).toBe("dev");
    });

    it("prod.json: every policy mandatory, prod-only policies told environment prod", () => {
        const cfg = reconcileConfig(loadConfig("prod"));
        for (const p of policies) expect(cfg.get(p.name)!.level, p.name).toBe("mandatory");
        for (const name of envSensitive) expect(cfg.get(name)!.props.environment, name).toBe("prod");
    });

    it("both files set environment explicitly for every stack-sensitive policy (no guessing)", () => {
        expect(envSensitive).toEqual(["datastore-backups", "datastore-persistent-storage", "emptydir-size-limit", "no-public-exposure", "pod-anti-affinity", "prometheus-alert-rules", "service-min-replicas", "service-pod-disruption-budget", "trusted-certificate-issuers"]);
        for (const file of ["dev", "prod"] as const) {
            const raw = loadConfig(file) as Record<string, any>;
            for (const name of envSensitive) expect(raw[name]?.environment, `${file}.json ${name}`).toBe(file);
        }
    });

    it("allowed-image-registries: each file allows what its stack deploys, from the image manifest, and nothing else", () => {
        const allowed = (file: string) => (loadConfig(file)["allowed-image-registries"] as { allowedRegistries: string[] }).allowedRegistries;
        const upstream = (except: string[]) => Object.entries(upstreamImages).filter(([name]) => !except.includes(name)).map(([, image]) => qualifiedRepository(image.ref));
        // node is the services build's base image (its NODE_IMAGE build argument, checked like a deployed
        // image: every stack builds the services image, prod FROM the upstream node); nginx is the Docker
        // edge and, on Kubernetes with ingress-nginx, edge-errors (the controller's refusals as JSON, session 52).
        expect(allowed("prod")).toEqual([stackFileConfig("prod")["trading:registry"], ...upstream([])]);
        expect(stackFileConfig("prod")["trading:imageSource"]).toBe("upstream");
        // dev runs and builds FROM the local builds (localhost/ai-trading/<build>: under a registry host no public registry
        // answers for) or, with trading:imageSource upstream, the same pinned upstream images, node included.
        expect(allowed("dev")).toEqual(["localhost/ai-trading", ...upstream([])]);
        expect(allowed("local-k8s")).toEqual(["localhost/ai-trading"]);
    });

    it("allowed-storage-drivers: prod.json and local-k8s.json list the storage class their stack names (trading:storageClass), and no driver", () => {
        for (const stack of ["prod", "local-k8s"]) {
            const cfg = loadConfig(stack)["allowed-storage-drivers"] as { allowedStorageDrivers: string[]; allowedStorageClasses: string[] };
            expect(cfg, stack).toEqual({ allowedStorageDrivers: [], allowedStorageClasses: [stackFileConfig(stack)["trading:storageClass"]] });
        }
    });

    it("network-policy-default-deny: the workloads allowed internet egress are those the program can give it (components/internet-egress.ts), in every file", () => {
        // Every setting that opens a path out: live trading on Binance (its market data too), an SMTP relay, the card processor's key.
        const widest = parseStackConfig("prod", {
            target: "kubernetes", registry: "registry.example.com/ai", certIssuer: "letsencrypt", ingressHost: "trading.example.com",
            tradingMode: "live", marketDataSource: "binance", smtpHost: "smtp.example.com",
        });
        const reaching = catalog.filter((s) => internetEgressOf(s, widest, true) !== undefined).map((s) => s.name).sort();
        // The market data ingester (Binance's feed), the exchange connector, the card processor's client and the notification sender.
        expect(reaching).toEqual(["data-bridge", "notification-service", "payment-service", "trading-engine"]);
        for (const file of ["dev", "prod", "local-k8s"]) {
            const listed = (loadConfig(file)["network-policy-default-deny"] as { internetEgressWorkloads: string[] }).internetEgressWorkloads;
            expect([...listed].sort(), file).toEqual(reaching);
        }
        expect(reconcileConfig({}).get("network-policy-default-deny")!.props.internetEgressWorkloads).toEqual([]);
    });

    // Session 54: the host-less catch-all is allowed where the stack renders it (the local cluster, its own Traefik), for edge-errors alone.
    it("ingress-hosts: local-k8s.json's catchAllService is edge-errors' Service, on the one stack that sets trading:edgeErrorsAnyHost; prod.json and dev.json allow none", () => {
        expect(loadConfig("local-k8s")["ingress-hosts"]).toEqual({ catchAllService: EDGE_ERRORS_WORKLOAD });
        for (const file of ["prod", "dev"]) expect(loadConfig(file)["ingress-hosts"], file).toBeUndefined();
        expect(reconcileConfig({}).get("ingress-hosts")!.props.catchAllService).toBe("");
        const stacks = fs.readdirSync(path.join(policiesDir, "..")).filter((f) => /^Pulumi\..+\.yaml$/.test(f));
        const anyHost = stacks.filter((f) => /^\s*trading:edgeErrorsAnyHost:\s*"?true"?\s*$/m.test(fs.readFileSync(path.join(policiesDir, "..", f), "utf8")));
        expect(anyHost).toEqual(["Pulumi.local-k8s.yaml"]);
    });

    it("network-policy-default-deny: local-k8s.json's pod and Service ranges are those scripts/cluster/lib.sh gives the cluster; prod.json kubeadm's defaults; without a config file, every private range", () => {
        const script = fs.readFileSync(path.join(policiesDir, "..", "scripts", "cluster", "lib.sh"), "utf8");
        const shell = (name: string) => new RegExp(`^${name}=(\\S+)$`, "m").exec(script)?.[1];
        const ranges = (file: string) => loadConfig(file)["network-policy-default-deny"] as { podCidrs: string[]; serviceCidrs: string[] };
        expect(ranges("local-k8s")).toMatchObject({ podCidrs: [shell("CLUSTER_CIDR")], serviceCidrs: [shell("SERVICE_CIDR")] });
        expect(ranges("prod")).toMatchObject({ podCidrs: ["10.244.0.0/16"], serviceCidrs: ["10.96.0.0/12"] });
        expect(reconcileConfig({}).get("network-policy-default-deny")!.props).toMatchObject({
            podCidrs: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"], serviceCidrs: [],
        });
    });

    it("without a config file everything is mandatory and prod-only rules run (fail safe)", () => {
        const cfg = reconcileConfig({});
        for (const p of policies) expect(cfg.get(p.name)!.level).toBe("mandatory");
        for (const name of envSensitive) expect(cfg.get(name)!.props.environment).toBe("prod");
    });

    it("rejects invalid config like the CLI does", () => {
        expect(() => reconcileConfig({ "no-public-exposure": { environment: "staging" } })).toThrow(/no-public-exposure.environment: must be one of dev, prod/);
        expect(() => reconcileConfig({ "strong-generated-secrets": { minPasswordLength: "32" } })).toThrow(/expected integer/);
        expect(() => reconcileConfig({ "no-such-policy": "advisory" })).toThrow(/unknown policies: no-such-policy/);
        expect(() => reconcileConfig({ "no-bare-pods": { foo: 1 } })).toThrow(/takes no configuration/);
    });

    it("a policy can be disabled or downgraded individually", async () => {
        const rs = replace(prodStack(), "api-gateway-deployment", (p) => { p.spec.replicas = 1; });
        expect(policyNames(await runPack(rs, { all: "mandatory", "service-min-replicas": "disabled" }))).toEqual([]);
        const vs = await runPack(rs, { all: "mandatory", "service-min-replicas": { enforcementLevel: "advisory" } });
        expect(vs.map((v) => `${v.policyName}:${v.enforcementLevel}`)).toEqual(["service-min-replicas:advisory"]);
    });
});

describe("pinned-image-tags and the stack config: one definition of a pinned image", () => {
    it("every stack's policy config keeps the floating tags the stack config refuses (catalog/images.ts)", () => {
        for (const file of ["dev", "prod", "local-k8s"]) {
            expect(reconcileConfig(loadConfig(file)).get("pinned-image-tags")!.props.floatingTags, file).toEqual(FLOATING_TAGS);
        }
        expect(reconcileConfig({}).get("pinned-image-tags")!.props.floatingTags).toEqual(FLOATING_TAGS);
    });

    it.each([
        "redis:stable", "postgres:alpine", "nginx:mainline", "redis:Latest", "redis", "localhost:5000/redis", "redis@sha256:abc",
        "redis:7.4.1", "redis:7.4.1-alpine", "localhost:5000/redis:7.4.1", `redis@sha256:${"a".repeat(64)}`, `redis:stable@sha256:${"a".repeat(64)}`,
    ])("%s: the stack config refuses it exactly when the pack reports it", async (ref) => {
        const reported = (await runPack([remoteImage(ref)], "prod", { only: ["pinned-image-tags"] })).length > 0;
        let refused = false;
        try {
            parseStackConfig("prod", { target: "kubernetes", registry: "registry.example.com/ai", certIssuer: "letsencrypt", ingressHost: "trading.example.com", redisEnabled: "true", redisImage: ref });
        } catch (e) {
            expect(e).toBeInstanceOf(ConfigError);
            refused = true;
        }
        expect(refused).toBe(reported);
    });
});

describe("the whole pack", () => {
    it("rejects a container configured like the guide's docker-compose, naming each policy", async () => {
        const guideStyle = {
            type: "docker:index/container:Container",
            name: "postgres-container",
            props: {
                name: "ai-trading-postgres",
                image: "postgres:latest",
                envs: ["POSTGRES_USER=ai_trading_user", "POSTGRES_PASSWORD=ai_trading_secure_pass_2024", "POSTGRES_DB=ai_trading"],
                ports: [{ internal: 5432, external: 5432 }],
                volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }],
                privileged: true,
                labels: [{ label: "trading.io/workload", value: "postgres" }, { label: "trading.io/role", value: "datastore" }],
            },
        };
        const vs = await runPack([guideStyle], "prod");
        expect(mandatory(vs)).toEqual(vs);
        expect(policyNames(vs)).toEqual([
            "datastore-backups",
            "datastore-persistent-storage",
            "drop-all-capabilities",
            "health-checks",
            "no-default-credentials",
            "no-privilege-escalation",
            "no-privileged-containers",
            "no-public-exposure",
            "pids-limit",
            "pinned-image-tags",
            "resource-limits",
            "run-as-non-root",
        ]);
        // The same container on dev: reported, but nothing blocks.
        const dev = await runPack([guideStyle], "dev");
        expect(mandatory(dev)).toEqual([]);
        expect(policyNames(dev)).toEqual(policyNames(vs).filter((n) => n !== "datastore-backups" && n !== "datastore-persistent-storage"));
    });

    it("runs during preview with unknown values without crashing or reporting 'can't run'", async () => {
        const preview = dockerContainer("api-gateway", "service", { image: UNKNOWN, envs: UNKNOWN, ports: UNKNOWN, uploads: UNKNOWN, healthcheck: UNKNOWN, memory: UNKNOWN, cpus: UNKNOWN });
        // With the stack's Prometheus: prod refuses services without one (prometheus-alert-rules).
        expect(await runPack([preview, dockerPrometheus()], "prod")).toEqual([]);
        const k8s = replace(prodStack(), "api-gateway-deployment", (p) => {
            p.metadata.namespace = UNKNOWN;
            p.spec.template.spec.containers[0].image = UNKNOWN;
            p.spec.template.spec.containers[0].env.push({ name: "LOG_FORMAT", value: UNKNOWN });
        });
        const vs = await runPack(k8s, "prod");
        expect(vs.filter((v) => v.message.startsWith("can't run"))).toEqual([]);
    });
});

describe("names every JavaScript object answers", () => {
    // Workload labels, resource names and namespaces are the program's strings: a policy that read
    // them as keys of a plain object (`map[name]`, `name in map`) would take `constructor` for an entry
    // and throw, and the engine would report the policy as failed instead of its findings.
    it.each(["constructor", "__proto__", "toString", "hasOwnProperty"])("run every policy over workloads named %s", async (name) => {
        const named = (r: ReturnType<typeof prodStack>[number]) => JSON.parse(JSON.stringify(r).replaceAll("\"api-gateway\"", JSON.stringify(name)));
        const resources = [...prodStack().map(named), named(dockerContainer("api-gateway", "service", { capabilities: { adds: ["SYS_ADMIN"], drops: [] } }))];
        const violations = await runPack(resources, "prod");
        expect(violations.some((v) => v.policyName === "drop-all-capabilities")).toBe(true);
    });
});
