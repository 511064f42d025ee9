/**
 * The real Pulumi program (tests/helpers/program.ts runs it under mocks) against the pack, with the
 * config file each stack's preview uses in CI (.github/workflows/preview.yml).
 */
import { describe, expect, it } from "vitest";
import { runProgram, stackFileConfig } from "../helpers/program";
import { loadConfig, mandatory, policyNames, runPack, TestResource, Violation } from "./run-pack";

async function judge(stack: string, policyConfig: string, config: Record<string, string | null> = {}, secrets: Record<string, string> = {}): Promise<Violation[]> {
    const run = await runProgram(stack, config, secrets);
    const resources: TestResource[] = run.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
    return runPack(resources, policyConfig);
}

/**
 * Live trading and a registry login. (A floating image tag, redis:stable, was part of it: the stack
 * config now refuses it before the program runs, by the pack's own definition; see below.)
 */
const INSECURE = { tradingMode: "live", marketDataSource: "binance", registryUsername: "admin" };

/**
 * Prod's configuration run under the dev stack's name: what the stack config accepts on dev stacks only
 * (guide placeholders, LoadBalancer datastores) reaches the pack, which prod.json must still block.
 */
const prodUnderDevName = () => ({ ...Object.fromEntries(Object.keys(stackFileConfig("dev")).map((k) => [k, null])), ...stackFileConfig("prod") });

const lines = (vs: Violation[]) => vs.map((v) => `${v.enforcementLevel} ${v.policyName} ${v.resourceName ?? "<stack>"}: ${v.message}`);

/**
 * Guide defaults given as secret config: its Grafana password admin123 as the registry password of
 * the image push (Kubernetes), and its placeholders for the exchange keys (tradingMode live needs them).
 */
const GUIDE_SECRETS = {
    registryPassword: "admin123",
    binanceApiKey: "your_binance_api_key_here",
    binanceSecretKey: "your_binance_secret_key_here",
};

// Each case runs the whole program under mocks (once or twice): minutes on a loaded machine.
describe("the real program against the pack", { timeout: 300_000 }, () => {
    it("prod (Kubernetes) passes prod.json with no violation at all", async () => {
        const vs = await judge("prod", "prod");
        expect(lines(vs)).toEqual([]);
    });

    it("prod with Binance market data and an SMTP relay (public, then private) passes prod.json: the egress they open is opted in", async () => {
        expect(lines(await judge("prod", "prod", { marketDataSource: "binance", smtpHost: "smtp.example.com" }))).toEqual([]);
        expect(lines(await judge("prod", "prod", { smtpHost: "10.20.30.40" }))).toEqual([]);
    });

    // policies/config/local-k8s.json (what `npm run up -- local-k8s` enforces) is prod's but for
    // replicas: on one 2-core node a second replica buys no availability, so the stack runs one of
    // each service (service-min-replicas floor 1) and the PDB rule, which wants a PDB on every
    // service, is off; the one replicated service keeps its PDB (the cluster suite evicts through it).
    // Its images are built on the host and imported into the node (localhost/ai-trading/<build>:<tag>, pull
    // policy Never): pull-never-local-images accepts Never for those alone.
    it("local-k8s (the local cluster) passes local-k8s.json with no violation at all", async () => {
        const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };
        expect(loadConfig("local-k8s")).toEqual({
            ...loadConfig("prod"),
            "service-min-replicas": { environment: "prod", minReplicas: 1 },
            "service-pod-disruption-budget": { environment: "dev" },
            "pull-never-local-images": { localImagePrefixes: ["localhost/ai-trading/"] },
            // No registry: every image is built here and imported into the node under localhost/ai-trading/<build>.
            "allowed-image-registries": { allowedRegistries: ["localhost/ai-trading"] },
            // The local cluster's class (Pulumi.local-k8s.yaml trading:storageClass), its provisioner reviewed (session 49).
            "allowed-storage-drivers": { allowedStorageDrivers: [], allowedStorageClasses: ["local-path"] },
            // The local cluster's Service range (scripts/cluster/lib.sh SERVICE_CIDR), a /16 of kubeadm's /12 (session 50).
            "network-policy-default-deny": { ...loadConfig("prod")["network-policy-default-deny"] as object, serviceCidrs: ["10.96.0.0/16"] },
            // Its Traefik is the platform's own: the catch-all's host-less rule to edge-errors (trading:edgeErrorsAnyHost, session 54).
            "ingress-hosts": { catchAllService: "edge-errors" },
        });
        const vs = await judge("local-k8s", "local-k8s", {}, tls);
        expect(lines(vs)).toEqual([]);
    });

    // Session 54: local-k8s' catch-all takes every Host (trading:edgeErrorsAnyHost); only local-k8s.json allows that host-less rule.
    it("local-k8s' any-Host catch-all fails ingress-hosts under prod.json (no catchAllService), and so would on a shared controller's stack", async () => {
        const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };
        const run = await runProgram("local-k8s", {}, tls);
        const resources: TestResource[] = run.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
        expect(lines(await runPack(resources, "prod", { only: ["ingress-hosts"] }))).toEqual([
            "mandatory ingress-hosts nginx-catch-all-ingress: Ingress \"nginx-catch-all-ingress\" rules[1] has no host, so it answers for any Host header; " +
            "set rules[].host to the platform's DNS name (config trading:ingressHost).",
        ]);
        expect(lines(await runPack(resources, "local-k8s", { only: ["ingress-hosts"] }))).toEqual([]);
    });

    it("dev (Docker) passes dev.json with no mandatory violation", async () => {
        const vs = await judge("dev", "dev");
        expect(lines(mandatory(vs))).toEqual([]);
        expect(vs.every((v) => v.enforcementLevel === "advisory")).toBe(true);
        // Every container the Docker runtime creates carries a PID limit (components/runtime/docker-container.ts).
        expect(lines(vs.filter((v) => v.policyName === "pids-limit"))).toEqual([]);
        // Its images are the local builds (localhost/ai-trading/...) and bare image IDs.
        expect(lines(vs.filter((v) => v.policyName === "allowed-image-registries"))).toEqual([]);
    });

    // The legacy Redis (trading:redisEnabled) runs the upstream image with a generated redis.conf
    // (components/data/definitions.ts): servers-require-authentication reads that conf where the program
    // puts it (the workload's Secret on Kubernetes, an upload on Docker), so a conf without requirepass fails.
    it("the legacy Redis as the program deploys it passes servers-require-authentication on both targets, and its conf is what is judged", async () => {
        const only = { only: ["servers-require-authentication"] };
        for (const [stack, config] of [["prod", { redisEnabled: "true" }], ["dev", { redisEnabled: "true", imageSource: "upstream" }], ["dev", { redisEnabled: "true" }]] as const) {
            const run = await runProgram(stack, config);
            const resources: TestResource[] = run.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
            expect(lines(await runPack(resources, stack, only)), `${stack} ${JSON.stringify(config)}`).toEqual([]);
            if (stack === "dev" && !("imageSource" in config)) continue; // the offline stand-in reads REDIS_PASSWORD, no conf
            const withoutPassword = (conf: string) => conf.replace(/^requirepass .*$/m, "");
            const broken = resources.map((r) => {
                const props = structuredClone(r.props);
                if (r.name === "redis-secret") props.stringData["usr_local_etc_redis_redis.conf"] = withoutPassword(props.stringData["usr_local_etc_redis_redis.conf"]);
                if (r.name === "redis-container") props.uploads[0].content = withoutPassword(props.uploads[0].content);
                return { ...r, props };
            });
            expect((await runPack(broken, stack, only)).map((v) => v.resourceName)).toEqual([stack === "prod" ? "redis-statefulset" : "redis-container"]);
        }
    });
});

describe("a deliberately insecure configuration is rejected", { timeout: 300_000 }, () => {
    it("an unpinned image (latest, a floating tag, no tag) never gets as far as the pack: the stack config refuses it", async () => {
        await expect(runProgram("prod", { postgresImage: "postgres:latest" })).rejects.toThrow(
            "Invalid configuration trading:postgresImage on stack 'prod': 'postgres:latest' uses the floating tag \"latest\"",
        );
        await expect(runProgram("prod", { redisEnabled: "true", redisImage: "redis:stable" })).rejects.toThrow(
            "Invalid configuration trading:redisImage on stack 'prod': 'redis:stable' uses the floating tag \"stable\": pin a version tag",
        );
        await expect(runProgram("dev", { postgresImage: "postgres" })).rejects.toThrow(
            "Invalid configuration trading:postgresImage on stack 'dev': 'postgres' has no tag (Docker resolves it to \"latest\")",
        );
    });

    // Since session 39 the stack config refuses the guide's literals as credentials on every stack but
    // dev, before the pack; the pack stays the second line. The prod program is run here under the
    // dev stack's name (the prod stack's file, the dev file's own keys removed), where the config lets
    // them through, and prod.json must still block what reaches its resources.
    it("prod: a guide default password (admin123) is refused by the prod stack's config, and fails prod.json where the config lets it through", async () => {
        await expect(runProgram("prod", INSECURE, GUIDE_SECRETS)).rejects.toThrow(
            "Invalid configuration trading:binanceApiKey on stack 'prod': holds the deployment guide's published placeholder \"your_binance_api_key_here\"",
        );
        await expect(runProgram("prod", INSECURE, { ...GUIDE_SECRETS, binanceApiKey: "k-live", binanceSecretKey: "s-live" })).rejects.toThrow(
            "Invalid configuration trading:registryPassword on stack 'prod': holds the deployment guide's published placeholder \"admin123\"",
        );
        const vs = await judge("dev", "prod", { ...prodUnderDevName(), ...INSECURE }, GUIDE_SECRETS);
        expect(mandatory(vs)).toEqual(vs);
        expect(policyNames(vs)).toEqual(["no-default-credentials"]);
        expect(lines(vs).filter((l) => l.includes("no-default-credentials")).join("\n")).toContain("published default \"admin123\" at registry.password");
    });

    it("dev: the same configuration is reported but advisory (dev.json blocks nothing)", async () => {
        const vs = await judge("dev", "dev", { ...INSECURE, imageSource: "upstream" }, GUIDE_SECRETS);
        expect(mandatory(vs)).toEqual([]);
        expect(policyNames(vs)).toEqual(["no-default-credentials"]);
    });

    // Session 40's configuration hunt: prod without monitoring passed the whole pack (prometheus-alert-rules
    // judged only a Prometheus that was there), so nothing alerted on a service down or a backup overdue.
    it("prod without Prometheus (trading:prometheusEnabled false) fails prod.json: nothing would evaluate an alert", async () => {
        const vs = await judge("prod", "prod", { prometheusEnabled: "false", grafanaEnabled: "false" });
        expect(lines(vs)).toEqual([
            expect.stringMatching(/^mandatory prometheus-alert-rules <stack>: The stack deploys \d+ service workload\(s\) and no Prometheus, so no alerting rule is evaluated/),
        ]);
    });

    it("the Docker stack promoted to production: published database ports and defaults fail prod.json", async () => {
        const vs = await judge("dev", "prod", { ...INSECURE, publishAdminPorts: "true", imageSource: "upstream" }, GUIDE_SECRETS);
        const names = policyNames(mandatory(vs));
        expect(names).toEqual(expect.arrayContaining(["no-public-exposure"]));
        expect(lines(vs).filter((l) => l.includes("no-public-exposure")).join("\n")).toContain("Container \"postgres-container\" is a datastore and publishes 5432 on the host");
    });

    // Since session 50 the stack config refuses every interface (0.0.0.0) and public addresses itself; a
    // private interface's address (a VPN's) is the operator's choice, which the pack still reports.
    it("dev: trading:adminBindAddress on a private interface publishes the database beyond loopback -> no-public-exposure", async () => {
        await expect(runProgram("dev", { adminBindAddress: "0.0.0.0" })).rejects.toThrow("Invalid configuration trading:adminBindAddress on stack 'dev': '0.0.0.0' is every interface of the host");
        const dev = await judge("dev", "dev", { adminBindAddress: "10.8.0.1" });
        expect(policyNames(dev)).toContain("no-public-exposure");
        expect(mandatory(dev)).toEqual([]);
        const prod = await judge("dev", "prod", { adminBindAddress: "10.8.0.1" });
        expect(policyNames(mandatory(prod))).toContain("no-public-exposure");
        expect(lines(prod).filter((l) => l.includes("no-public-exposure")).join("\n")).toContain("postgres-container");
    });

    // Since session 50 the stack config refuses it on every stack but dev; prod's configuration under the
    // dev stack's name shows prod.json still blocks the Services (the second line).
    it("prod: trading:exposeDatastores=true gives the datastores LoadBalancer Services -> refused by the config, and no-public-exposure", async () => {
        await expect(runProgram("prod", { exposeDatastores: "true" })).rejects.toThrow("Invalid configuration trading:exposeDatastores on stack 'prod'");
        const vs = await judge("dev", "prod", { ...prodUnderDevName(), exposeDatastores: "true" });
        expect(policyNames(vs)).toEqual(["no-public-exposure"]);
        expect(mandatory(vs)).toEqual(vs);
        expect(lines(vs).join("\n")).toContain("postgres-service");
    });

    // protected-namespaces still judges what the program would deploy there (cluster-hygiene.test.ts's fixtures).
    it("prod: trading:namespace=default or kube-system never gets as far as the pack: the stack config refuses a protected namespace", async () => {
        for (const namespace of ["default", "kube-system"]) {
            await expect(runProgram("prod", { namespace }), namespace).rejects.toThrow(
                `Invalid configuration trading:namespace on stack 'prod': '${namespace}' belongs to the cluster (default and kube-* hold its own components)`,
            );
        }
    });

    it("local-k8s: a registry image set for a datastore runs under the stack's pull policy Never -> pull-never-local-images, allowed-image-registries", async () => {
        const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };
        const vs = await judge("local-k8s", "local-k8s", { postgresImage: "postgres:16.4-bookworm" }, tls);
        // The cluster has no registry: an upstream image is outside its allowed registries too (the
        // backup CronJob and the run recorder run the same image).
        expect(policyNames(vs)).toEqual(["allowed-image-registries", "pull-never-local-images"]);
        expect(mandatory(vs)).toEqual(vs);
        expect(lines(vs).join("\n")).toContain("StatefulSet \"postgres-statefulset\" container \"postgres\" runs the registry image postgres:16.4-bookworm with imagePullPolicy: Never");
        expect(lines(vs).join("\n")).toContain("StatefulSet \"postgres-statefulset\" container \"postgres\" image \"postgres:16.4-bookworm\" (docker.io/library/postgres) is not from an allowed registry (allowedRegistries: localhost/ai-trading)");
    });

    // Session 42's policy hunt: verbose logs on production. The config refuses them without the opt-in; with it,
    // prod.json still refuses each workload until no-insecure-runtime-flags' verboseLogWorkloads lists it.
    it("prod: trading:logLevel debug is refused by the stack config, and with allowVerboseLogs fails prod.json (no-insecure-runtime-flags)", async () => {
        await expect(runProgram("prod", { logLevel: "debug" })).rejects.toThrow("Invalid configuration trading:logLevel on stack 'prod': 'debug' logs request detail");
        const vs = await judge("prod", "prod", { logLevel: "debug", allowVerboseLogs: "true" });
        expect(policyNames(vs)).toEqual(["no-insecure-runtime-flags"]);
        expect(mandatory(vs)).toEqual(vs);
        expect(lines(vs).join("\n")).toContain("Deployment \"api-gateway-deployment\" container \"api-gateway\" sets LOG_LEVEL=debug: verbose logs carry request detail");
    });

    // A privileged container cannot be produced through the program: it offers no such switch on
    // purpose (a debugging escape hatch would ship to production sooner or later). The policy's
    // own tests (containers.test.ts) feed it privileged containers directly.
});
