import { describe, expect, it } from "vitest";
import { asEveryPodKind, deployment, dockerPrometheus, dockerService, edit, NS, prodStack, secret } from "./fixtures";
import { runPack, summary, UNKNOWN } from "./run-pack";

/**
 * no-insecure-runtime-flags (session 38's configuration hunt): a Node inspector, Node's lenient HTTP
 * parser, TLS verification turned off, Prometheus's admin API. Each passed the whole pack before.
 */
describe("no-insecure-runtime-flags", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, { only: ["no-insecure-runtime-flags"] });
    const fix = "; remove it: a debugger port runs any code sent to it, an unverified TLS connection hands the credentials it carries to " +
        "whoever is on the path, and Prometheus's admin and lifecycle APIs delete data or stop it for any client (debug a copy outside the stack; give a private CA with " +
        "NODE_EXTRA_CA_CERTS instead of turning verification off).";

    it("passes the platform's own containers and ordinary settings", async () => {
        expect(await run(prodStack())).toEqual([]);
        const svc = dockerService("api-gateway", { envs: ["NODE_TLS_REJECT_UNAUTHORIZED=1", "NODE_OPTIONS=--max-old-space-size=192 --enable-source-maps", UNKNOWN] });
        expect(await run([svc, dockerPrometheus()])).toEqual([]);
        const k8s = deployment("api-gateway", 3000, { container: { env: [{ name: "NODE_OPTIONS", value: "--max-old-space-size=192" }, { name: "NODE_TLS_REJECT_UNAUTHORIZED", value: UNKNOWN }], args: ["--inspector-is-no-flag"] } });
        expect(await run([k8s])).toEqual([]);
    });

    it("rejects TLS verification turned off, on both targets, mandatory on prod and advisory on dev", async () => {
        const docker = dockerService("payment-service", { envs: ["NODE_TLS_REJECT_UNAUTHORIZED=0"] });
        const k8s = deployment("payment-service", 3000, { container: { env: [{ name: "NODE_TLS_REJECT_UNAUTHORIZED", value: "0" }] } });
        const problem = "NODE_TLS_REJECT_UNAUTHORIZED=0, which turns off certificate verification of every TLS connection the process opens";
        expect(await run([docker, k8s])).toEqual([
            { policyName: "no-insecure-runtime-flags", resourceName: "payment-service-container", enforcementLevel: "mandatory", message: `Container "payment-service-container" envs sets ${problem}${fix}` },
            { policyName: "no-insecure-runtime-flags", resourceName: "payment-service-deployment", enforcementLevel: "mandatory", message: `Deployment "payment-service-deployment" container "payment-service" sets ${problem}${fix}` },
        ]);
        expect((await run([docker], "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory"]);
    });

    it("rejects notification-service's SMTP without STARTTLS or without verifying the relay, in any spelling the service kit reads as false", async () => {
        const k8s = deployment("notification-service", 3000, { container: { env: [{ name: "SMTP_REQUIRE_TLS", value: "Off" }, { name: "SMTP_TLS_REJECT_UNAUTHORIZED", value: "0" }] } });
        expect((await run([k8s])).map((v) => v.message.replace(fix, ""))).toEqual([
            "Deployment \"notification-service-deployment\" container \"notification-service\" sets SMTP_REQUIRE_TLS=Off, which lets notification-service log in to the SMTP relay and send without STARTTLS",
            "Deployment \"notification-service-deployment\" container \"notification-service\" sets SMTP_TLS_REJECT_UNAUTHORIZED=0, which lets notification-service accept any certificate from the SMTP relay",
        ]);
        const docker = dockerService("notification-service", { envs: ["SMTP_REQUIRE_TLS=true", "SMTP_TLS_REJECT_UNAUTHORIZED=yes", "SMTP_SECURE=false"] });
        expect(await run([docker])).toEqual([]);
    });

    it("rejects a Node inspector or the lenient HTTP parser in NODE_OPTIONS, the command, args or a shell script, in every pod kind", async () => {
        const k8s = deployment("api-gateway", 3000, {
            container: {
                env: [{ name: "NODE_OPTIONS", value: "--max-old-space-size=192 --inspect=0.0.0.0:9229" }],
                command: ["node", "--inspect-brk", "dist/services/src/main.js"],
                args: ["sh", "-c", "NODE_TLS_REJECT_UNAUTHORIZED=0 exec node --insecure-http-parser main.js"],
            },
        });
        const messages = (await run([k8s])).map((v) => v.message.replace(fix, ""));
        expect(messages).toEqual([
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" passes --inspect in NODE_OPTIONS",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" command passes --inspect-brk",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" args sets NODE_TLS_REJECT_UNAUTHORIZED=0, which turns off certificate verification of every TLS connection the process opens",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" args passes --insecure-http-parser",
        ]);
        for (const kind of asEveryPodKind(deployment("api-gateway", 3000, { container: { env: [{ name: "NODE_OPTIONS", value: "--inspect-port=9229" }] } }))) {
            expect(summary(await run([kind])), kind.type).toEqual([`no-insecure-runtime-flags ${kind.name}`]);
        }
        const docker = dockerService("api-gateway", { envs: ["NODE_OPTIONS=--inspect-wait"], entrypoints: ["node", "--debug-port=9230"] });
        expect((await run([docker])).map((v) => v.message.replace(fix, ""))).toEqual([
            "Container \"api-gateway-container\" envs passes --inspect-wait in NODE_OPTIONS",
            "Container \"api-gateway-container\" entrypoints passes --debug-port",
        ]);
    });

    it("reads the settings a ConfigMap or Secret hands a pod as its environment (envFrom), Secret data base64-decoded", async () => {
        const configMap = {
            type: "kubernetes:core/v1:ConfigMap", name: "gateway-env",
            props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "gateway-env", namespace: NS }, data: { NODE_OPTIONS: "--inspect=0.0.0.0:9229", LOG_LEVEL: "info", "nginx.conf": "--inspect" } },
        };
        const s = secret("notifier", { SMTP_PASSWORD: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" }, { NODE_TLS_REJECT_UNAUTHORIZED: Buffer.from("0").toString("base64") });
        expect((await run([configMap, s])).map((v) => v.message.replace(fix, ""))).toEqual([
            "ConfigMap \"gateway-env\" data.NODE_OPTIONS passes --inspect in NODE_OPTIONS in every pod taking it as its environment",
            "Secret \"notifier-secret\" data.NODE_TLS_REJECT_UNAUTHORIZED sets NODE_TLS_REJECT_UNAUTHORIZED=0, which turns off certificate verification of every TLS connection the process opens in every pod taking it as its environment",
        ]);
    });

    it("rejects Prometheus's admin API", async () => {
        const prometheus = edit(dockerPrometheus(), (p) => { p.command = [...(p.command ?? []), "--web.enable-admin-api"]; });
        expect((await run([prometheus])).map((v) => v.message.replace(fix, ""))).toEqual([
            `Container "${prometheus.name}" command passes --web.enable-admin-api`,
        ]);
        const k8s = deployment("prometheus", 9090, { role: "monitoring", container: { args: ["--config.file=/etc/prometheus/prometheus.yml", "--web.enable-admin-api"] } });
        expect(summary(await run([k8s]))).toEqual(["no-insecure-runtime-flags prometheus-deployment"]);
    });
});

// Session 42's policy hunt: LOG_LEVEL debug or trace on a production workload passed the pack (and the
// stack config: tests/unit/config-refusals.test.ts "logLevel (session 42)").
describe("no-insecure-runtime-flags: verbose logs on Kubernetes (session 42)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, { only: ["no-insecure-runtime-flags"] });
    const verboseFix = ": verbose logs carry request detail the info level leaves out (bodies, headers, identifiers, query parameters) to every reader " +
        "of the cluster's logs; use info (trading:logLevel) on this stack, or list the workload in verboseLogWorkloads for the time of an investigation.";

    it("rejects LOG_LEVEL debug or trace in a Kubernetes workload of every pod-bearing kind and in an environment source, unless listed in verboseLogWorkloads", async () => {
        const kinds = asEveryPodKind(deployment("api-gateway", 3001, { container: { env: [{ name: "LOG_LEVEL", value: "debug" }] } }));
        const found = (await run(kinds)).map((v) => v.message);
        expect(found).toEqual(kinds.map((k) => `${k.type.split(":").pop()} "${k.name}" container "api-gateway" sets LOG_LEVEL=debug${verboseFix}`));
        const trace = deployment("order-management", 3002, { container: { env: [{ name: "LOG_LEVEL", value: "TRACE" }] } });
        const source = { type: "kubernetes:core/v1:ConfigMap", name: "gateway-env", props: { metadata: { name: "gateway-env", namespace: NS }, data: { LOG_LEVEL: "trace" } } };
        expect((await run([trace, source])).map((v) => v.message)).toEqual([
            `Deployment "order-management-deployment" container "order-management" sets LOG_LEVEL=TRACE${verboseFix}`,
            `ConfigMap "gateway-env" data.LOG_LEVEL sets LOG_LEVEL=trace in every pod taking it as its environment${verboseFix}`,
        ]);
        const allowing = { all: "mandatory" as const, "no-insecure-runtime-flags": { verboseLogWorkloads: ["order-management", "gateway-env"] } };
        expect(await run([trace, source], allowing)).toEqual([]);
        expect((await run([kinds[0], trace], allowing)).map((v) => v.resourceName)).toEqual([kinds[0].name]);
    });

    it("passes info and quieter levels, a value unknown during preview, and a Docker (dev) container at debug", async () => {
        const levels = ["info", "warn", "error", "fatal", "silent", UNKNOWN].map((value, i) =>
            deployment(["api-gateway", "order-management", "trading-engine", "data-bridge", "portfolio-manager", "risk-management"][i], 3000 + i, { container: { env: [{ name: "LOG_LEVEL", value }] } }));
        expect(await run(levels)).toEqual([]);
        expect(await run([dockerService("api-gateway", { envs: ["LOG_LEVEL=debug"] })])).toEqual([]);
    });
});

// Session 43's policy hunt: DEBUG (the debug module: ioredis writes every command with its arguments, the
// DragonflyDB AUTH password among them) and NODE_DEBUG passed the pack on both targets, in env, a shell
// script and an environment source; only LOG_LEVEL was judged.
describe("no-insecure-runtime-flags: DEBUG and NODE_DEBUG (session 43)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, { only: ["no-insecure-runtime-flags"] });
    const debugFix = ": DEBUG (the debug module) and NODE_DEBUG write library and Node internals to the logs past pino's level and redaction " +
        "(ioredis's debug output carries every command's arguments, the DragonflyDB AUTH password among them) for every reader of the logs; " +
        "remove it, or list the workload in verboseLogWorkloads for the time of an investigation.";

    it("rejects DEBUG or NODE_DEBUG turning output on, in a Kubernetes workload of every pod-bearing kind, a Docker container, a command line and an environment source", async () => {
        const kinds = asEveryPodKind(deployment("api-gateway", 3001, { container: { env: [{ name: "DEBUG", value: "*" }] } }));
        expect((await run(kinds)).map((v) => v.message)).toEqual(kinds.map((k) => `${k.type.split(":").pop()} "${k.name}" container "api-gateway" sets DEBUG=*${debugFix}`));
        const nodeDebug = deployment("order-management", 3002, { container: { env: [{ name: "NODE_DEBUG", value: "http,tls" }] } });
        const script = deployment("trading-engine", 3003, { container: { command: ["sh", "-c", "DEBUG='ioredis:*' exec node dist/services/src/main.js trading-engine"] } });
        const docker = dockerService("risk-management", { envs: ["LOG_LEVEL=info", "DEBUG=ioredis:*,-ioredis:connection"], entrypoints: ["env", "NODE_DEBUG=net", "node", "main.js"] });
        const source = { type: "kubernetes:core/v1:ConfigMap", name: "gateway-env", props: { metadata: { name: "gateway-env", namespace: NS }, data: { DEBUG: "express:* ioredis:*" } } };
        const s = secret("notifier", {}, { NODE_DEBUG: Buffer.from("http").toString("base64") });
        expect((await run([nodeDebug, script, docker, source, s])).map((v) => v.message)).toEqual([
            `Deployment "order-management-deployment" container "order-management" sets NODE_DEBUG=http,tls${debugFix}`,
            `Deployment "trading-engine-deployment" container "trading-engine" command sets DEBUG=ioredis:*${debugFix}`,
            `Container "risk-management-container" envs sets DEBUG=ioredis:*,-ioredis:connection${debugFix}`,
            `Container "risk-management-container" entrypoints sets NODE_DEBUG=net${debugFix}`,
            `ConfigMap "gateway-env" data.DEBUG sets DEBUG=express:* ioredis:* in every pod taking it as its environment${debugFix}`,
            `Secret "notifier-secret" data.NODE_DEBUG sets NODE_DEBUG=http in every pod taking it as its environment${debugFix}`,
        ]);
        // Mandatory on prod, advisory on dev (a Docker stack's logs are read all the same).
        expect((await run([docker], "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory", "advisory"]);
    });

    it("passes a value that turns nothing on, a value unknown during preview, and a workload or source listed in verboseLogWorkloads", async () => {
        const values = ["", "-*", "-express:*,-ioredis:*", "false", "0", "off", UNKNOWN];
        const quiet = values.map((value, i) => deployment(`svc-${i}`, 3000 + i, { container: { env: [{ name: i % 2 ? "NODE_DEBUG" : "DEBUG", value }] } }));
        expect(await run([...quiet, dockerService("api-gateway", { envs: ["DEBUG=", "NODE_DEBUG=false"] })])).toEqual([]);
        const allowing = { all: "mandatory" as const, "no-insecure-runtime-flags": { verboseLogWorkloads: ["order-management", "risk-management", "gateway-env"] } };
        const k8s = deployment("order-management", 3002, { container: { env: [{ name: "NODE_DEBUG", value: "http" }] } });
        const docker = dockerService("risk-management", { envs: ["DEBUG=*"] });
        const source = { type: "kubernetes:core/v1:ConfigMap", name: "gateway-env", props: { metadata: { name: "gateway-env", namespace: NS }, data: { DEBUG: "*" } } };
        expect(await run([k8s, docker, source], allowing)).toEqual([]);
        // The opt-in is per workload: another one is still refused.
        expect(summary(await run([k8s, dockerService("api-gateway", { envs: ["DEBUG=*"] })], allowing))).toEqual(["no-insecure-runtime-flags api-gateway-container"]);
    });
});
