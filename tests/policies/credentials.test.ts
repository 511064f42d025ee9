import { describe, expect, it } from "vitest";
import { findDefaultCredentials } from "../../policies/rules/no-default-credentials";
import { isCredentialName, urlPassword } from "../../policies/lib/credentials";
import {
    asEveryPodKind, backupCronJob, container, deployment, dockerNginx, dockerPostgres, dockerPrometheus, ingress, dockerService, edit, randomBytes, randomPassword,
    prodStack, rulesConfigMap, secret, statefulSet,
} from "./fixtures";
import { runPack, summary, UNKNOWN } from "./run-pack";

const only = (name: string) => ({ only: [name] });

describe("no-default-credentials", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("no-default-credentials"));

    it("passes generated credentials", async () => {
        expect(await run([dockerPostgres(), dockerService(), secret("postgres", { POSTGRES_PASSWORD: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" })])).toEqual([]);
    });

    it("rejects the guide's PostgreSQL password in a Docker env, mandatory on prod and advisory on dev", async () => {
        const pg = edit(dockerPostgres(), (p) => { p.envs[1] = "POSTGRES_PASSWORD=ai_trading_secure_pass_2024"; });
        const expected = {
            policyName: "no-default-credentials",
            resourceName: "postgres-container",
            message: "Container \"postgres-container\" has the deployment guide's published default \"ai_trading_secure_pass_2024\" at envs[1]. " +
                "Published or guessable credentials must be treated as compromised: generate the value with random.RandomPassword " +
                "(length >= 32) or set it with `pulumi config set --secret`, and on Kubernetes pass it through a Secret.",
        };
        expect(await run([pg])).toEqual([{ ...expected, enforcementLevel: "mandatory" }]);
        expect(await run([pg], "dev")).toEqual([{ ...expected, enforcementLevel: "advisory" }]);
    });

    it("finds each guide literal anywhere: URLs, JWT, API key placeholders, Grafana admin123, upload contents", async () => {
        const svc = dockerService("api-gateway", {
            envs: [
                "POSTGRES_URL=postgresql://ai_trading_user:ai_trading_secure_pass_2024@postgres:5432/ai_trading",
                "JWT_SECRET=ai_trading_jwt_super_secret_key_change_in_production_2024",
                "BINANCE_API_KEY=your_binance_api_key_here",
            ],
            uploads: [{ file: "/etc/grafana/provisioning/admin.ini", content: "[security]\nadmin_password = admin123\n" }],
        });
        const found = findDefaultCredentials(svc.type, svc.props).map((f) => `${f.path}: ${f.problem}`);
        expect(found).toEqual([
            "envs[0]: the deployment guide's published default \"ai_trading_secure_pass_2024\"",
            "envs[1]: the deployment guide's published default \"ai_trading_jwt_super_secret_key_change_in_production_2024\"",
            "envs[2]: the deployment guide's published default \"your_binance_api_key_here\"",
            "uploads[0].content: the deployment guide's published default \"admin123\"",
        ]);
        expect(await run([svc])).toHaveLength(4);
    });

    it("decodes Kubernetes Secret data (base64) and checks stringData", async () => {
        const b64 = Buffer.from("dragonfly_secure_pass_2024").toString("base64");
        const s = secret("dragonfly", { ADMIN_PASSWORD: "changeme" }, { DRAGONFLY_PASSWORD: b64 });
        expect((await run([s])).map((v) => v.message.split(". ")[0])).toEqual([
            "Secret \"dragonfly-secret\" has the deployment guide's published default \"dragonfly_secure_pass_2024\" at data.DRAGONFLY_PASSWORD (base64-decoded)",
            "Secret \"dragonfly-secret\" has a weak, well-known value at stringData.ADMIN_PASSWORD",
        ]);
    });

    it("flags weak values only in credential positions (an image called postgres is fine)", async () => {
        const weak = edit(dockerPostgres(), (p) => {
            p.envs = ["POSTGRES_USER=postgres", "POSTGRES_PASSWORD=postgres", "POSTGRES_DB=postgres"];
        });
        expect((await run([weak])).map((v) => v.message.split(". ")[0])).toEqual([
            "Container \"postgres-container\" has a weak, well-known value at envs[1] (POSTGRES_PASSWORD)",
        ]);
        const url = dockerService("api-gateway", { envs: ["DRAGONFLY_URL=redis://:password@dragonfly:6379"] });
        expect((await run([url])).map((v) => v.message.split(". ")[0])).toEqual([
            "Container \"api-gateway-container\" has a URL whose password is a weak, well-known value at envs[0]",
        ]);
        const k8s = deployment("grafana", 3000, { role: "monitoring", container: { env: [{ name: "GF_SECURITY_ADMIN_PASSWORD", value: "admin" }] } });
        expect(summary(await run([k8s]))).toEqual(["no-default-credentials grafana-deployment"]);
    });

    it("rejects an empty credential and settings that turn a server's authentication off", async () => {
        const pg = edit(dockerPostgres(), (p) => { p.envs = ["POSTGRES_USER=app", "POSTGRES_PASSWORD=", "POSTGRES_HOST_AUTH_METHOD=trust"]; });
        const grafana = deployment("grafana", 3000, { role: "monitoring", container: { env: [{ name: "GF_AUTH_ANONYMOUS_ENABLED", value: "true" }, { name: "GF_AUTH_ANONYMOUS_ORG_ROLE", value: "Admin" }] } });
        const s = secret("clickhouse", { CLICKHOUSE_PASSWORD: "" });
        const empty = secret("tls", { "ca.crt": "" });
        const off = (who: string, setting: string, at: string) => `${who} turns authentication off with ${setting} at ${at}: every client gets in without a credential; ` +
            "remove the setting and give the server a generated password (random.RandomPassword, through a Secret on Kubernetes).";
        expect((await run([pg, grafana, s, empty])).map((v) => (v.message.includes("turns authentication off") ? v.message : v.message.split(". ")[0]))).toEqual([
            "Container \"postgres-container\" has an empty credential at envs[1] (POSTGRES_PASSWORD)",
            off("Container \"postgres-container\"", "POSTGRES_HOST_AUTH_METHOD=trust", "envs[2]"),
            off("Deployment \"grafana-deployment\"", "GF_AUTH_ANONYMOUS_ENABLED=true", "container \"grafana\" env"),
            "Secret \"clickhouse-secret\" has an empty credential at stringData.CLICKHOUSE_PASSWORD",
        ]);
    });

    it("reads an authentication-off setting as its server does: every spelling of true, Grafana's auth proxy, any non-empty ARANGO_NO_AUTH (session 38)", async () => {
        // Before: only the literal "true" (and "yes" for ALLOW_EMPTY_PASSWORD) was seen, while Grafana
        // (go-ini) reads 1/t/y/yes/on as true, Weaviate on/enabled/1, the Bitnami images 1, and the
        // ArangoDB entrypoint turns authentication off for any non-empty ARANGO_NO_AUTH, "0" included.
        const off: Array<[string, string]> = [
            ["GF_AUTH_ANONYMOUS_ENABLED", "1"], ["GF_AUTH_ANONYMOUS_ENABLED", "On"], ["GF_AUTH_ANONYMOUS_ENABLED", "yes"], ["GF_AUTH_ANONYMOUS_ENABLED", "t"],
            ["GF_AUTH_PROXY_ENABLED", "true"], ["GF_AUTH_PROXY_ENABLED", "1"],
            ["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "enabled"], ["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "1"], ["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "on"],
            ["ARANGO_NO_AUTH", "0"], ["ARANGO_NO_AUTH", "false"], ["ALLOW_EMPTY_PASSWORD", "1"],
        ];
        for (const [name, value] of off) {
            const k8s = deployment("grafana", 3000, { role: "monitoring", container: { env: [{ name, value }] } });
            const docker = dockerService("grafana", { envs: [`${name}=${value}`] });
            expect((await run([k8s, docker])).map((v) => v.message.split(":")[0]), `${name}=${value}`).toEqual([
                `Deployment "grafana-deployment" turns authentication off with ${name}=${value} at container "grafana" env`,
                `Container "grafana-container" turns authentication off with ${name}=${value} at envs[0]`,
            ]);
        }
        // What each server reads as false stays accepted.
        const on: Array<[string, string]> = [
            ["GF_AUTH_ANONYMOUS_ENABLED", "false"], ["GF_AUTH_ANONYMOUS_ENABLED", "0"], ["GF_AUTH_PROXY_ENABLED", "false"],
            ["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "false"], ["ALLOW_EMPTY_PASSWORD", "no"],
        ];
        for (const [name, value] of on) {
            expect(await run([deployment("grafana", 3000, { role: "monitoring", container: { env: [{ name, value }] } })]), `${name}=${value}`).toEqual([]);
        }
    });

    it("reads an init container's env under every pod-bearing kind (a CronJob's job template, a Job, a bare Pod, ...)", async () => {
        const init = container("migrate", 0, { env: [{ name: "POSTGRES_PASSWORD", value: "postgres" }] });
        for (const kind of asEveryPodKind(deployment("api-gateway", 3001, { spec: { initContainers: [init] } }))) {
            expect((await run([kind])).map((v) => v.message.split(". ")[0]), kind.type).toEqual([
                `${kind.type.split(":").pop()} "${kind.name}" has a weak, well-known value at container "migrate" env POSTGRES_PASSWORD`,
            ]);
        }
    });

    it("ignores values unknown during preview and honours extraForbiddenValues", async () => {
        const svc = dockerService("api-gateway", { envs: [UNKNOWN, "TELEGRAM_BOT_TOKEN=leaked-token-123"] });
        expect(await run([svc])).toEqual([]);
        const cfg = { all: "mandatory" as const, "no-default-credentials": { extraForbiddenValues: ["leaked-token-123"] } };
        expect(summary(await runPack([svc], cfg, only("no-default-credentials")))).toEqual(["no-default-credentials api-gateway-container"]);
    });
});

describe("strong-generated-secrets", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("strong-generated-secrets"));

    it("passes 44-character passwords and a 64-byte JWT key", async () => {
        expect(await run([randomPassword("trading-secrets-postgres"), randomBytes("trading-secrets-jwt", 64), randomPassword("jwt-signing", 64)])).toEqual([]);
    });

    it("rejects short passwords and short JWT keys, with the fix", async () => {
        expect(await run([randomPassword("trading-secrets-postgres", 16), randomBytes("trading-secrets-jwt", 32), randomPassword("jwt-key", 40)])).toEqual([
            {
                policyName: "strong-generated-secrets", resourceName: "trading-secrets-postgres", enforcementLevel: "mandatory",
                message: "RandomPassword \"trading-secrets-postgres\" generates a secret of 16 characters; it must be at least 32 (the guide: `openssl rand -base64 32`). Set length: 32 or more.",
            },
            {
                policyName: "strong-generated-secrets", resourceName: "trading-secrets-jwt", enforcementLevel: "mandatory",
                message: "RandomBytes \"trading-secrets-jwt\" is a JWT signing key of 32 bytes; it must be at least 64 bytes (the guide: `openssl rand -hex 64`). Set length: 64 or more.",
            },
            {
                policyName: "strong-generated-secrets", resourceName: "jwt-key", enforcementLevel: "mandatory",
                message: "RandomPassword \"jwt-key\" is a JWT signing key of 40 characters; it must be at least 64 bytes (the guide: `openssl rand -hex 64`). Set length: 64 or more.",
            },
        ]);
    });

    it("leaves RandomString name suffixes alone but checks credential-named ones", async () => {
        const suffix = { type: "random:index/randomString:RandomString", name: "bucket-suffix", props: { length: 6 } };
        const token = { type: "random:index/randomString:RandomString", name: "webhook-token", props: { length: 12 } };
        expect(summary(await run([suffix, token]))).toEqual(["strong-generated-secrets webhook-token"]);
    });
});

describe("credentials-from-secret-refs", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("credentials-from-secret-refs"));

    it("passes env from secretKeyRef and non-secret literals (AUTHENTICATION_APIKEY_ENABLED=true)", async () => {
        const weaviate = statefulSet("weaviate", "datastore", "cr.weaviate.io/semitechnologies/weaviate:1.26.5", 8080, 1000, {
            env: [
                { name: "AUTHENTICATION_APIKEY_ENABLED", value: "true" },
                { name: "AUTHENTICATION_APIKEY_USERS", value: "trading" },
                { name: "AUTHENTICATION_APIKEY_ALLOWED_KEYS", valueFrom: { secretKeyRef: { name: "weaviate-credentials", key: "key" } } },
            ],
        });
        expect(await run([deployment("api-gateway", 3001), weaviate])).toEqual([]);
    });

    it("rejects literal credentials, even computed ones, and URLs with passwords", async () => {
        const d = deployment("api-gateway", 3001, {
            container: {
                env: [
                    { name: "JWT_SECRET", value: UNKNOWN },
                    { name: "BINANCE_SECRET_KEY", value: "x".repeat(64) },
                    { name: "POSTGRES_URL", value: "postgresql://ai_trading_user:Q7mZr2LwX9pT4vNc8Kd@postgres:5432/ai_trading" },
                    { name: "CLICKHOUSE_URL", value: "http://clickhouse:8123" },
                    { name: "POSTGRES_PASSWORD_FILE", value: "/run/secrets/postgres" },
                    // Credential names beyond PASSWORD/SECRET/TOKEN/KEY: the password itself in the images reading them.
                    { name: "DB_PASS", value: "Q7mZr2LwX9pT4vNc8KdH3sYb" },
                    { name: "REDIS_AUTH", value: "Q7mZr2LwX9pT4vNc8KdH3sYb" },
                ],
            },
        });
        expect((await run([d])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets JWT_SECRET as a literal value (computed at deploy time)",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets BINANCE_SECRET_KEY as a literal value",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets POSTGRES_URL to a URL with an embedded password",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets DB_PASS as a literal value",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets REDIS_AUTH as a literal value",
        ]);
    });

    it("rejects credentials in ConfigMaps; allowedLiteralEnv exempts a name", async () => {
        const cm = { type: "kubernetes:core/v1:ConfigMap", name: "app-config", props: { metadata: { name: "app-config" }, data: { DRAGONFLY_URL: "redis://:s3cretvalue@dragonfly:6379", API_TOKEN: "abc", LOG_LEVEL: "info" } } };
        expect((await run([cm])).map((v) => v.message.split(". ")[0])).toEqual([
            "ConfigMap \"app-config\": ConfigMap key DRAGONFLY_URL contains a URL with an embedded password",
            "ConfigMap \"app-config\": ConfigMap key API_TOKEN looks like a credential",
        ]);
        const d = deployment("api-gateway", 3001, { container: { env: [{ name: "PUBLIC_KEY", value: "ssh-ed25519 AAAA" }] } });
        const cfg = { all: "mandatory" as const, "credentials-from-secret-refs": { allowedLiteralEnv: ["PUBLIC_KEY"] } };
        expect(await runPack([d], cfg, only("credentials-from-secret-refs"))).toEqual([]);
    });

    it("rejects a credential-named variable taken from a ConfigMap: the value sits in plain ConfigMap data under any key name", async () => {
        const d = deployment("api-gateway", 3001, {
            container: {
                env: [
                    { name: "JWT_SECRET", valueFrom: { configMapKeyRef: { name: "app-config", key: "jwt" } } },
                    { name: "LOG_LEVEL", valueFrom: { configMapKeyRef: { name: "app-config", key: "log" } } },
                    { name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: "pg", key: "password" } } },
                ],
            },
        });
        expect((await run([d])).map((v) => v.message)).toEqual([
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" takes JWT_SECRET from ConfigMap \"app-config\" key jwt. Literal values end up in the object spec, " +
                "visible to anyone who can read the workload: put the value in a Secret and reference it with env[].valueFrom.secretKeyRef (the guide: \"use Docker secrets for sensitive data\").",
        ]);
    });

    it("rejects private key material in a literal env value or ConfigMap data (text or binary), whatever the name", async () => {
        const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
        const d = deployment("api-gateway", 3001, { container: { env: [{ name: "TLS_PEM", value: pem }, { name: "CA_CERT", value: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----" }] } });
        const cm = {
            type: "kubernetes:core/v1:ConfigMap", name: "edge-config",
            props: {
                metadata: { name: "edge-config" },
                data: { "server.pem": pem, "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----" },
                binaryData: { "client.p8": Buffer.from("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n").toString("base64"), DB_PASSWORD: Buffer.from("Q7mZr2LwX9pT4vNc").toString("base64"), "logo.png": Buffer.from([0x89, 0x50]).toString("base64") },
            },
        };
        expect((await run([d, cm])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets TLS_PEM to a private key",
            "ConfigMap \"edge-config\": ConfigMap key server.pem holds a private key",
            "ConfigMap \"edge-config\": ConfigMap key client.p8 (binaryData) holds a private key",
            "ConfigMap \"edge-config\": ConfigMap key DB_PASSWORD (binaryData) looks like a credential",
        ]);
    });

    it("rejects a credential in a container's command or args (shown by kubectl and ps), not a $(VAR) reference", async () => {
        const d = deployment("api-gateway", 3001, {
            container: {
                command: ["sh", "-c", "pg_dump postgresql://backup:Q7mZr2LwX9pT4vNc8Kd@postgres:5432/ai_trading > /backup/x.dump"],
                args: ["--db-password=Q7mZr2LwX9pT4vNc8Kd", "--api-token", "tok-abcdef123456", "--jwt-secret=$(JWT_SECRET)", "--token-ttl=60", "--password", "$(PGPASSWORD)"],
            },
        });
        expect((await run([d])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" passes a URL with an embedded password in command[2]",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" passes a literal credential in args[0] (--db-password)",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" passes a literal credential in args[1] (--api-token)",
        ]);
    });

    it("reads an init container's env and command line under every pod-bearing kind (a CronJob's job template, a Job, a bare Pod, ...)", async () => {
        const migrate = container("migrate", 0, {
            env: [
                { name: "POSTGRES_PASSWORD", value: "Q7mZr2LwX9pT4vNc8KdH3sYb" },
                { name: "JWT_SECRET", valueFrom: { configMapKeyRef: { name: "app-config", key: "jwt" } } },
            ],
            args: ["--api-token=tok-abcdef123456"],
        });
        const d = deployment("api-gateway", 3001, { spec: { initContainers: [migrate] } });
        for (const kind of asEveryPodKind(d)) {
            const who = `${kind.type.split(":").pop()} "${kind.name}"`;
            expect((await run([kind])).map((v) => v.message.split(". ")[0]), kind.type).toEqual([
                `${who}: container "migrate" sets POSTGRES_PASSWORD as a literal value`,
                `${who}: container "migrate" takes JWT_SECRET from ConfigMap "app-config" key jwt`,
                `${who}: container "migrate" passes a literal credential in args[0] (--api-token)`,
            ]);
        }
    });

    it("tells a value unknown during preview (a literal computed at deploy time) from an unknown valueFrom (a reference), and a non-string value is still a literal", async () => {
        const d = deployment("api-gateway", 3001, {
            container: {
                env: [
                    { name: "JWT_SECRET", valueFrom: UNKNOWN },
                    { name: "API_TOKEN", value: UNKNOWN },
                    { name: "DB_PASSWORD", value: 123456 },
                    { name: "ADMIN_PASSWORD", value: "" },
                    { name: "REDIS_PASSWORD", value: null },
                    UNKNOWN,
                    { name: UNKNOWN, value: "Q7mZr2LwX9pT4vNc8KdH3sYb" },
                ],
            },
        });
        expect((await run([d])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets API_TOKEN as a literal value (computed at deploy time)",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" sets DB_PASSWORD as a literal value",
        ]);
    });

    it("rejects credentials in annotations and labels of any object and of pod templates; a Secret's name in an ingress-nginx annotation is fine", async () => {
        const d = edit(deployment("api-gateway", 3001), (p) => {
            p.metadata.annotations = { "example.com/db-password": "hunter2-but-longer", "example.com/owner": "team-trading" };
            p.spec.template.metadata.annotations = { "example.com/callback": "https://bot:s3cr3t@hooks.example.com/x", "example.com/api-token": UNKNOWN };
            p.spec.template.metadata.labels = { ...p.spec.template.metadata.labels, "vault-token": "s.abc123" };
        });
        const pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        const cj = edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => {
            p.spec.jobTemplate.spec.template.metadata.annotations = { "example.com/deploy-key-material": pem };
        });
        const ing = ingress({ annotations: {
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/auth-secret": "ai-trading/basic-auth",
            "nginx.ingress.kubernetes.io/auth-tls-secret": "ai-trading/client-ca",
        } });
        const s = edit(secret("postgres", { POSTGRES_PASSWORD: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" }), (p) => {
            p.metadata.annotations = { "example.com/admin-secret": "plain" };
        });
        expect((await run([d, cj, ing, s])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": metadata annotation example.com/db-password looks like a credential and has a literal value",
            "Deployment \"api-gateway-deployment\": pod template annotation example.com/callback contains a URL with an embedded password",
            "Deployment \"api-gateway-deployment\": pod template annotation example.com/api-token looks like a credential and has a literal value (computed at deploy time)",
            "Deployment \"api-gateway-deployment\": pod template label vault-token looks like a credential and has a literal value",
            "CronJob \"postgres-backup-cronjob\": pod template annotation example.com/deploy-key-material holds a private key",
            "Secret \"postgres-secret\": metadata annotation example.com/admin-secret looks like a credential and has a literal value",
        ]);
        // A private key or password URL is reported even under an annotation that names a Secret.
        const leaky = ingress({ annotations: { "nginx.ingress.kubernetes.io/auth-secret": pem } });
        expect((await run([leaky])).map((v) => v.message.split(". ")[0])).toEqual([
            "Ingress \"nginx-ingress\": metadata annotation nginx.ingress.kubernetes.io/auth-secret holds a private key",
        ]);
        const cfg = { all: "mandatory" as const, "credentials-from-secret-refs": { secretNameAnnotations: ["example.com/admin-secret"] } };
        expect(await runPack([s], cfg, only("credentials-from-secret-refs"))).toEqual([]);
    });

    it("Docker containers: their labels, judged as Kubernetes labels are (no secret reference exists for either)", async () => {
        const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        const c = dockerService("api-gateway", {
            labels: [
                { label: "trading.io/workload", value: "api-gateway" },
                { label: "trading.io/role", value: "service" },
                { label: "com.example.db-password", value: "hunter2-but-longer" },
                { label: "com.example.backup-target", value: "s3://backup:s3cr3t@minio.internal:9000/pg" },
                { label: "com.example.deploy-key-material", value: pem },
                { label: "com.example.api-token", value: UNKNOWN },
                { label: "com.example.password-min-length", value: "12" },
                { label: "com.example.vault-token", value: "" },
            ],
        });
        const vs = await run([c]);
        expect(vs.map((v) => v.message.split(". ")[0])).toEqual([
            "Container \"api-gateway-container\": label com.example.db-password looks like a credential and has a literal value",
            "Container \"api-gateway-container\": label com.example.backup-target contains a URL with an embedded password",
            "Container \"api-gateway-container\": label com.example.deploy-key-material holds a private key",
            "Container \"api-gateway-container\": label com.example.api-token looks like a credential and has a literal value (computed at deploy time)",
        ]);
        expect(vs[0].message).toBe("Container \"api-gateway-container\": label com.example.db-password looks like a credential and has a literal value. " +
            "Container labels are shown by docker inspect and docker ps to anyone who can reach the engine and cannot come from a secret: " +
            "remove it from the labels and give the container the credential as an env var or uploaded file from a generated value or " +
            "`pulumi config set --secret`.");
        // The platform's own labels, and its env literals (Docker has no Secret objects: not this policy's business).
        expect(await run([dockerService(), dockerPostgres()])).toEqual([]);
    });

    it("Docker networks and volumes: their labels, and driver options read as a mount reads them (CIFS `o: username=..,password=..`)", async () => {
        const network = {
            type: "docker:index/network:Network", name: "trading-network",
            props: { name: "ai-trading-dev", internal: false, labels: [{ label: "trading.io/stack", value: "dev" }, { label: "com.example.registry-token", value: "ghp_literal" }], options: { "com.docker.network.bridge.name": "br-trading" } },
        };
        const volume = (driverOpts: Record<string, unknown>, labels: { label: string; value: unknown }[] = []) => ({
            type: "docker:index/volume:Volume", name: "postgres-data", props: { name: "ai-trading-dev-postgres", driver: "local", driverOpts, labels },
        });
        const vs = await run([
            network,
            volume({ type: "cifs", device: "//nas.internal/backups", o: "username=backup,password=hunter2-but-longer,vers=3.0" }),
            volume({ type: "nfs", o: "addr=10.0.0.5,rw", device: ":/exports/pg", "smb-password": "literal" }, [{ label: "com.example.backup-target", value: "s3://backup:s3cr3t@minio.internal:9000/pg" }]),
        ]);
        expect(vs.map((v) => v.message.split(". ")[0])).toEqual([
            "Network \"trading-network\": label com.example.registry-token looks like a credential and has a literal value",
            "Volume \"postgres-data\": driverOpts o holds a literal credential (password=)",
            "Volume \"postgres-data\": label com.example.backup-target contains a URL with an embedded password",
            "Volume \"postgres-data\": driverOpts smb-password looks like a credential and has a literal value",
        ]);
        expect(vs[1].message).toContain("a CIFS volume reads it from a `credentials=` file");
        // What the platform registers: labels without credentials, a CIFS volume reading a credentials file, an empty option.
        expect(await run([
            { ...network, props: { ...network.props, labels: [{ label: "trading.io/stack", value: "dev" }] } },
            volume({ type: "cifs", device: "//nas.internal/backups", o: "credentials=/etc/cifs/backup.cred,vers=3.0,password=" }, [{ label: "trading.io/stack", value: "dev" }]),
            volume({}),
        ])).toEqual([]);
    });
});

// Session 42's policy hunt: a file held in a ConfigMap value was not read (only its key's name, a URL
// with a password and a private key were), so a properties file, redis.conf, .env, YAML, JSON or INI
// carrying a password passed; a weak value inside a Docker upload or Secret file passed no-default-credentials.
describe("credentials inside files (session 42)", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("no-default-credentials"));
    const configMap = (data: Record<string, string>, binaryData?: Record<string, string>) =>
        ({ type: "kubernetes:core/v1:ConfigMap", name: "app-config", props: { metadata: { name: "app-config" }, data, ...(binaryData ? { binaryData } : {}) } });

    it("credentials-from-secret-refs reads each file of a ConfigMap line by line: a credential setting with a literal is refused, a reference, nothing or a path passes", async () => {
        const leaky = configMap({
            "app.properties": "db.url=jdbc:postgresql://postgres:5432/trading\ndb.user=trading\ndb.password=hunter2\n",
            "redis.conf": "appendonly yes\nrequirepass Q7mZr2LwX9pT4vNc\n",
            ".env": "# settings\nexport API_TOKEN='abc123'\nLOG_LEVEL=info\n",
            "config.yaml": "database:\n  host: postgres\n  password: \"hunter2\"\n",
            "settings.json": JSON.stringify({ db: { host: "postgres", password: "hunter2" } }),
            "app.ini": "[smtp]\nhost = smtp.example.com\nsmtp_password = hunter2 ; the relay\n",
            "datasource.xml": "<datasource>\n  <password>hunter2</password>\n</datasource>",
            "connection.txt": "Server=postgres;User Id=trading;Password=hunter2;",
            "dsn.txt": "postgres://trading:hunter2@postgres:5432/trading",
        }, { "jvm.options": Buffer.from("-Xmx512m\n-Dspring.datasource.password=hunter2\n").toString("base64") });
        const who = "ConfigMap \"app-config\": ConfigMap key";
        const vs = await runPack([leaky], "prod", only("credentials-from-secret-refs"));
        expect(vs.map((v) => v.message.split(". ")[0])).toEqual([
            `${who} app.properties sets db.password to a literal value in its content (line 3)`,
            `${who} redis.conf sets requirepass to a literal value in its content (line 2)`,
            `${who} .env sets API_TOKEN to a literal value in its content (line 2)`,
            `${who} config.yaml sets password to a literal value in its content (line 3)`,
            `${who} settings.json sets password to a literal value in its content (line 1)`,
            `${who} app.ini sets smtp_password to a literal value in its content (line 3)`,
            `${who} datasource.xml sets password to a literal value in its content (line 2)`,
            `${who} connection.txt sets Password to a literal value in its content (line 1)`,
            `${who} dsn.txt contains a URL with an embedded password`,
            `${who} jvm.options (binaryData) sets Dspring.datasource.password to a literal value in its content (line 2)`,
        ]);
        expect(vs.every((v) => v.enforcementLevel === "mandatory")).toBe(true);
        expect(vs[0].message).toContain("keep the file in a Secret (mounted the same way)");
        // Never the value itself in a message.
        expect(vs.some((v) => v.message.includes("hunter2") || v.message.includes("abc123"))).toBe(false);
        const references = configMap({
            "app.properties": "db.password=${DB_PASSWORD}\ndb.password.file=/run/secrets/db\n",
            "redis.conf": "requirepass $(REDIS_PASSWORD)\n",
            "values.yaml": "auth:\n  password: {{ .Values.postgres.password }}\n  token:\n  apiKey: \"\"\n",
            "grafana.yml": "secureJsonData:\n  basicAuthPassword: $__env{GF_DS_PASSWORD}\n  password_file: /etc/secrets/pw\n",
            "dsn.txt": "postgres://trading:${DB_PASSWORD}@postgres:5432/trading",
            "notes.txt": "The password is rotated weekly by the platform.\n",
            // Keys that are no credential in a file: a selector's or a record's key, a column, a public key.
            "selector.yaml": "matchExpressions:\n  - key: app.kubernetes.io/name\n    operator: In\nprimary_key: id\npartition.key: user_id\n",
            "transform.json": JSON.stringify([{ key: "severity", value: "critical" }]),
            "ssh.conf": "public_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\nauth: basic\n",
        });
        expect(await runPack([references], "prod", only("credentials-from-secret-refs"))).toEqual([]);
    });

    it("no-default-credentials reads a weak value inside a Docker upload, a Secret's file or a ConfigMap's file", async () => {
        const svc = dockerService("api-gateway", {
            uploads: [
                { file: "/usr/local/etc/redis/redis.conf", content: "appendonly yes\nrequirepass changeme\n" },
                { file: "/app/.env", contentBase64: Buffer.from("DB_USER=app\nDB_PASSWORD=password\n").toString("base64") },
                { file: "/app/ok.env", content: "DB_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb\n" },
            ],
        });
        const s = secret("app", { "config.yaml": "db:\n  password: admin\n" });
        const found = [...findDefaultCredentials(svc.type, svc.props), ...findDefaultCredentials(s.type, s.props)].map((f) => `${f.path}: ${f.problem}`);
        expect(found).toEqual([
            "uploads[0].content line 2 (requirepass): a weak, well-known value",
            "uploads[1].contentBase64 (decoded) line 2 (DB_PASSWORD): a weak, well-known value",
            "stringData.config.yaml line 2 (password): a weak, well-known value",
        ]);
        expect(await run([svc, s])).toHaveLength(3);
    });

    it("the platform's own ConfigMaps (Prometheus, Grafana) and the files it uploads carry none: fixtures of both", async () => {
        expect(await runPack([rulesConfigMap(), dockerPrometheus(), dockerNginx()], "prod", { only: ["credentials-from-secret-refs", "no-default-credentials"] })).toEqual([]);
    });
});

// Session 43's policy hunt: a file was read for name=value, name: value, <name>value</name> and
// directive-value lines only, so a password in any other shape passed: a .pgpass line, a YAML block or
// folded scalar or a value on the next line, a JSON value under its key (JSON with comments), a .netrc
// entry, a token as a URL's user (.git-credentials), a Docker config.json's auth, a kubeconfig's client-key-data.
describe("credentials inside files: formats beyond name=value (session 43)", () => {
    const configMap = (data: Record<string, string>) =>
        ({ type: "kubernetes:core/v1:ConfigMap", name: "app-config", props: { metadata: { name: "app-config" }, data } });
    const refs = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("credentials-from-secret-refs"));
    const who = "ConfigMap \"app-config\": ConfigMap key";
    const dockerAuth = Buffer.from("deploy:Xk9mQ2pL7vRt").toString("base64");

    it("credentials-from-secret-refs refuses each, naming the key, the setting and the line, never the value", async () => {
        const leaky = configMap({
            ".pgpass": "# host:port:database:user:password\npostgres:5432:trading:trading:Xk9mQ2pL7vRt\n*:*:*:replicator:R3pl\\:ic8tion\n",
            "block.yaml": "db:\n  host: postgres\n  password: |\n    Xk9mQ2pL7vRt\n",
            "next-line.yaml": "db:\n  password:\n    Xk9mQ2pL7vRt\n",
            "folded.yaml": "---\nkind: x\n---\nsmtp:\n  api_token: >-\n    Xk9mQ2pL\n    7vRt\n",
            "settings.jsonc": "{\n  // the relay\n  \"smtp_password\":\n    \"Xk9mQ2pL7vRt\",\n}\n",
            ".netrc": "machine api.example.com login deploy password Xk9mQ2pL7vRt\n",
            "git-store": "https://ghp_Xk9mQ2pL7vRtXk9mQ2pL7vRtXk9mQ2pL@github.com\n",
            "config.json": JSON.stringify({ auths: { "registry.example.com": { auth: dockerAuth } } }, null, 2),
            "kubeconfig": "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    client-certificate-data: LS0tLS1CRUdJTg==\n    client-key-data: LS0tLS1CRUdJTiBSU0E=\n",
        });
        const vs = await refs([leaky]);
        expect(vs.map((v) => v.message.split(". ")[0])).toEqual([
            `${who} .pgpass sets the password of a .pgpass line (host:port:database:user:password) to a literal value in its content (line 2)`,
            `${who} .pgpass sets the password of a .pgpass line (host:port:database:user:password) to a literal value in its content (line 3)`,
            `${who} block.yaml sets password to a literal value in its content (line 3)`,
            `${who} next-line.yaml sets password to a literal value in its content (line 2)`,
            `${who} folded.yaml sets api_token to a literal value in its content (line 5)`,
            `${who} settings.jsonc sets smtp_password to a literal value in its content (line 3)`,
            `${who} .netrc sets the password of a .netrc entry to a literal value in its content (line 1)`,
            `${who} git-store sets the user of a URL (a token) to a literal value in its content (line 1)`,
            `${who} config.json sets auth to a literal value in its content (line 4)`,
            `${who} kubeconfig sets client-key-data to a literal value in its content (line 7)`,
        ]);
        for (const secretValue of ["Xk9mQ2pL7vRt", "R3pl", "7vRt", "ghp_Xk9m", dockerAuth, "LS0tLS1CRUdJTiBSU0E"]) {
            expect(vs.filter((v) => v.message.includes(secretValue)), secretValue).toEqual([]);
        }
    });

    it("passes references, paths, names and public material in the same formats", async () => {
        const clean = configMap({
            ".pgpass": "*:*:*:trading:${PGPASSWORD}\n",
            "mac.txt": "00:1a:2b:3c:4d\n",
            "block.yaml": "db:\n  password: |\n    ${DB_PASSWORD}\n  password_file: /run/secrets/db\ndescription: |\n  The password is rotated weekly.\n",
            ".netrc": "machine api.example.com login deploy\ndefault login anonymous\n",
            "remotes.txt": "ssh://git@github.com/acme/x.git\nhttps://deploy@git.example.com/y.git\nhttps://build-service-account-for-production-1@ci.example.com/\n",
            "config.json": JSON.stringify({ auths: { "registry.example.com": {} }, credsStore: "ecr-login" }, null, 2),
            "kubeconfig": "users:\n- name: ci\n  user:\n    client-certificate-data: LS0tLS1CRUdJTg==\n    client-key: /etc/keys/ci.key\n    tokenFile: /var/run/secrets/token\n",
            "selector.yaml": "matchExpressions:\n  - key: app.kubernetes.io/name\n    operator: In\nauth: basic\n",
        });
        expect(await refs([clean])).toEqual([]);
    });

    it("no-default-credentials reads a weak value in the same formats: a .pgpass in a Docker upload, a YAML block scalar in a Secret", async () => {
        const svc = dockerService("api-gateway", { uploads: [{ file: "/home/node/.pgpass", content: "postgres:5432:*:trading:changeme\n" }] });
        const s = secret("app", { "config.yaml": "db:\n  password: |-\n    admin\n" });
        const found = [...findDefaultCredentials(svc.type, svc.props), ...findDefaultCredentials(s.type, s.props)].map((f) => `${f.path}: ${f.problem}`);
        expect(found).toEqual([
            "uploads[0].content line 1 (the password of a .pgpass line (host:port:database:user:password)): a weak, well-known value",
            "stringData.config.yaml line 2 (password): a weak, well-known value",
        ]);
    });
});

describe("credential helpers", () => {
    it("judges names by their last word", () => {
        expect(["POSTGRES_PASSWORD", "JWT_SECRET", "BINANCE_SECRET_KEY", "TELEGRAM_BOT_TOKEN", "AUTHENTICATION_APIKEY_ALLOWED_KEYS", "adminPassword"].filter(isCredentialName)).toHaveLength(6);
        expect(["AUTHENTICATION_APIKEY_ENABLED", "PASSWORD_MIN_LENGTH", "POSTGRES_PASSWORD_FILE", "KAFKA_BROKERS", "TOKEN_TTL"].filter(isCredentialName)).toEqual([]);
    });
    it("extracts URL passwords", () => {
        expect(urlPassword("postgresql://u:p%40ss@h:5432/db")).toBe("p@ss");
        expect(urlPassword("redis://:pw@dragonfly:6379")).toBe("pw");
        expect(urlPassword("http://clickhouse:8123")).toBeUndefined();
    });
    void container;
});

// Session 44's policy hunt: nothing judged which Secret a workload reads, so a service taking the datastore's
// own Secret (postgres-credentials: the superuser's password) with envFrom, a secretKeyRef or a volume passed.
describe("workload-secret-scope (session 44)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("workload-secret-scope"));
    const owned = (workload: string) => edit(secret(workload, { PASSWORD: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" }), (p) => {
        p.metadata.labels = { "trading.io/workload": workload, "trading.io/role": "datastore" };
    });
    const fix = (owner: string) => `, so its pods hold ${owner}'s credentials, and whoever takes them over does too. Give the workload a Secret of its own with only ` +
        `what it needs (the platform writes <workload>-credentials for each), and leave ${owner}'s to ${owner}.`;

    it("rejects a workload reading another workload's Secret by envFrom, secretKeyRef, a secret volume or a projected source, init containers and CronJobs included", async () => {
        const d = deployment("api-gateway", 3001, {
            container: { envFrom: [{ secretRef: { name: "postgres-credentials" } }] },
            spec: {
                initContainers: [container("migrate", 0, { ports: [], env: [{ name: "REDIS_PASSWORD", valueFrom: { secretKeyRef: { name: "dragonfly-credentials", key: "PASSWORD" } } }] })],
                volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, { name: "pg", secret: { secretName: "postgres-credentials" } },
                    { name: "all", projected: { sources: [{ secret: { name: "clickhouse-credentials" } }] } }],
            },
        });
        const cron = edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => {
            p.spec.jobTemplate.spec.template.spec.containers[0].env.push({ name: "CH", valueFrom: { secretKeyRef: { name: "clickhouse-credentials", key: "PASSWORD" } } });
        });
        const rs = [owned("postgres"), owned("dragonfly"), owned("clickhouse"), d, cron];
        expect((await run(rs)).map((v) => `${v.enforcementLevel} ${v.resourceName}: ${v.message}`)).toEqual([
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "dragonfly-credentials" of workload dragonfly (init container "migrate" env[0] (REDIS_PASSWORD) secretKeyRef)${fix("dragonfly")}`,
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "postgres-credentials" of workload postgres (container "api-gateway" envFrom[0].secretRef (every key))${fix("postgres")}`,
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "postgres-credentials" of workload postgres (volume "pg" (secret))${fix("postgres")}`,
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "clickhouse-credentials" of workload clickhouse (volume "all" projected sources[0].secret)${fix("clickhouse")}`,
            `mandatory postgres-backup-cronjob: CronJob "postgres-backup-cronjob" (trading.io/workload postgres-backup) reads Secret "clickhouse-credentials" of workload clickhouse (container "postgres-backup" env[1] (CH) secretKeyRef)${fix("clickhouse")}`,
        ]);
        expect((await run(rs, "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory", "advisory", "advisory", "advisory", "advisory"]);
    });

    // (Session 45: a Secret declared without an owner label, shared-credentials here until then, is refused: see below.)
    it("passes a workload's own Secret, a Secret the stack does not declare, another namespace's, and a name unknown during preview", async () => {
        const d = deployment("api-gateway", 3001, { container: { envFrom: [{ secretRef: { name: "api-gateway-credentials" } }, { secretRef: { name: "external-credentials" } }, { secretRef: { name: UNKNOWN } }] } });
        // (Session 45: an undeclared postgres-credentials, whose name says whose it is, is refused: another namespace's Secret is vendor's here.)
        const other = edit(owned("vendor"), (p) => { p.metadata.namespace = "other"; });
        const d2 = deployment("risk-analyzer", 8020, { container: { envFrom: [{ secretRef: { name: "vendor-credentials" } }] } });
        expect(await run([owned("api-gateway"), other, d, d2])).toEqual([]);
    });
});

// Session 45's policy hunt: workload-secret-scope judged only Secrets labelled with an owner, so one declared without
// the label passed whoever read it (two workloads sharing one credential), and so did an undeclared postgres-credentials.
describe("workload-secret-scope: unlabelled and undeclared Secrets (session 45)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("workload-secret-scope"));
    const unlabelled = (name: string, labels?: Record<string, unknown>) => edit(secret(name, { TOKEN: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" }), (p) => {
        if (labels === undefined) delete p.metadata.labels; else p.metadata.labels = labels;
    });
    const fix = ". Label the Secret with the one workload it belongs to (the platform labels each <workload>-credentials), and give every other reader a Secret of its own.";

    it("rejects a Secret declared without an owner label (read by one workload or shared), and an undeclared <platform workload>-credentials", async () => {
        const gateway = deployment("api-gateway", 3001, { container: { envFrom: [{ secretRef: { name: "shared-credentials" } }, { secretRef: { name: "extra-credentials" } }, { secretRef: { name: "postgres-credentials" } }] } });
        const risk = deployment("risk-analyzer", 8020, { spec: { volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, { name: "shared", secret: { secretName: "shared-credentials" } }] } });
        const rs = [unlabelled("shared"), unlabelled("extra", { "trading.io/workload": " ", "trading.io/role": "service" }), gateway, risk];
        expect((await run(rs)).map((v) => `${v.enforcementLevel} ${v.resourceName}: ${v.message}`)).toEqual([
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "shared-credentials" (container "api-gateway" envFrom[0].secretRef (every key)), ` +
            `which the stack declares without a trading.io/workload label, so nothing says whose credentials it holds, and risk-analyzer reads it too: one leak gives away every reader's access${fix}`,
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "extra-credentials" (container "api-gateway" envFrom[1].secretRef (every key)), ` +
            `which the stack declares without a trading.io/workload label, so nothing says whose credentials it holds${fix}`,
            `mandatory api-gateway-deployment: Deployment "api-gateway-deployment" (trading.io/workload api-gateway) reads Secret "postgres-credentials" of workload postgres, which the stack does not ` +
            `declare but names as that workload's (container "api-gateway" envFrom[2].secretRef (every key)), so its pods hold postgres's credentials, and whoever takes them over does too. ` +
            "Give the workload a Secret of its own with only what it needs (the platform writes <workload>-credentials for each), and leave postgres's to postgres.",
            `mandatory risk-analyzer-deployment: Deployment "risk-analyzer-deployment" (trading.io/workload risk-analyzer) reads Secret "shared-credentials" (volume "shared" (secret)), ` +
            `which the stack declares without a trading.io/workload label, so nothing says whose credentials it holds, and api-gateway reads it too: one leak gives away every reader's access${fix}`,
        ]);
        expect((await run(rs, "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory", "advisory", "advisory", "advisory"]);
        // Without any Secret in the stack, the undeclared one is judged all the same.
        expect((await run([gateway])).map((v) => v.message.split(" (container")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" (trading.io/workload api-gateway) reads Secret \"postgres-credentials\" of workload postgres, which the stack does not declare but names as that workload's",
        ]);
    });

    it("passes Secrets labelled with their reader (the platform's), an undeclared Secret of no platform workload's name, and labels unknown during preview", async () => {
        const d = deployment("api-gateway", 3001, { container: { envFrom: [{ secretRef: { name: "vendor-credentials" } }, { secretRef: { name: "computed-credentials" } }, { secretRef: { name: "later-credentials" } }] } });
        const rs = [secret("api-gateway", { A: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt" }), unlabelled("computed", { "trading.io/workload": UNKNOWN }), edit(unlabelled("later"), (p) => { p.metadata.labels = UNKNOWN; }), d];
        expect(await run(rs)).toEqual([]);
        expect(await run(prodStack())).toEqual([]);
    });
});

// Session 44: on Docker a credential is a file (/run/secrets/<name>, read through <NAME>_FILE), no longer a variable the rule looked at.
describe("no-default-credentials: a Docker secret file holding one credential", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("no-default-credentials"));
    const pg = (content: string) =>
        edit(dockerPostgres(), (p) => {
            p.envs = ["POSTGRES_USER=trading", "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password"];
            p.uploads = [{ file: "/run/secrets/postgres_password", content, permissions: "0400", owner: "999", group: "999" }];
        });

    it("is weak or empty as the variable would be; a generated one passes", async () => {
        expect((await run([pg("postgres")])).map((v) => v.message)).toEqual([expect.stringContaining("has a weak, well-known value at uploads[0] (/run/secrets/postgres_password)")]);
        expect((await run([pg("\n")])).map((v) => v.message)).toEqual([expect.stringContaining("has an empty credential at uploads[0] (/run/secrets/postgres_password)")]);
        expect(await run([pg("Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt")])).toEqual([]);
    });
});
