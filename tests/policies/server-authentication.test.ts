import { describe, expect, it } from "vitest";
import { deployment, devStack, dockerContainer, NS, prodStack, secret } from "./fixtures";
import { runPack, UNKNOWN } from "./run-pack";

/**
 * servers-require-authentication (session 38's configuration hunt): a server whose authentication
 * is off until a setting turns it on, deployed without that setting, passed the whole pack (there is
 * no value for no-default-credentials to see).
 */
describe("servers-require-authentication", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, { only: ["servers-require-authentication"] });
    const fix = "; set it from a generated password (random.RandomPassword, through a Secret on Kubernetes), as the platform's own components do.";
    const secretRef = (name: string) => ({ name, valueFrom: { secretKeyRef: { name: "x-credentials", key: name } } });
    const k8sServer = (workload: string, image: string, env: any[], extra: Record<string, any> = {}) =>
        deployment(workload, 3000, { role: "monitoring", container: { image, env, args: [], ...extra } });

    it("passes the servers configured as the platform configures them, and images it does not know", async () => {
        expect(await run([...prodStack(), ...devStack()])).toEqual([]);
        const servers = [
            k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [{ name: "GF_SECURITY_ADMIN_USER", value: "admin" }, secretRef("GF_SECURITY_ADMIN_PASSWORD"), { name: "GF_USERS_ALLOW_SIGN_UP", value: "false" }]),
            k8sServer("dragonfly", "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", [secretRef("DFLY_requirepass")]),
            k8sServer("weaviate", "cr.weaviate.io/semitechnologies/weaviate:1.35.2", [{ name: "AUTHENTICATION_APIKEY_ENABLED", value: "true" }, secretRef("AUTHENTICATION_APIKEY_ALLOWED_KEYS")]),
            dockerContainer("dragonfly", "datastore", { image: "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", envs: [], command: ["dragonfly", "--requirepass=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt"] }),
            dockerContainer("grafana", "monitoring", { image: "docker.io/grafana/grafana:11.2.0", envs: ["GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/admin"] }),
        ];
        expect(await run(servers)).toEqual([]);
        // A Docker container runs its image by ID: recognised by its workload; the offline stand-in
        // for Dragonfly (Redis 7) takes its password as REDIS_PASSWORD, which Dragonfly's own image ignores.
        const standIn = dockerContainer("dragonfly", "datastore", { image: "sha256:" + "2".repeat(64), envs: ["REDIS_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt"] });
        expect(await run([standIn])).toEqual([]);
        const upstream = dockerContainer("dragonfly", "datastore", { image: "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2", envs: ["REDIS_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt"] });
        expect((await run([upstream])).map((v) => v.message.replace(fix, ""))).toEqual([
            "Container \"dragonfly-container\" runs dragonfly without requirepass (in the flag file it is started with, DFLY_requirepass or --requirepass, from a generated secret), so its authentication is off",
        ]);
        // Not judged on what it lacks when part of its environment is not known during preview (it is at `up`).
        const unread = [
            k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [], { envFrom: [{ secretRef: { name: UNKNOWN } }] }),
            dockerContainer("grafana", "monitoring", { image: "docker.io/grafana/grafana:11.2.0", envs: [UNKNOWN] }),
        ];
        expect(await run(unread)).toEqual([]);
    });

    it("reads a server's envFrom ConfigMaps and Secrets when the stack declares them, and reports one it does not as unverifiable", async () => {
        const grafana = (envFrom: any[]) => k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [{ name: "GF_SECURITY_ADMIN_USER", value: "admin" }], { envFrom });
        // The password from a declared Secret (base64 data), sign-up from a declared ConfigMap: passes.
        const env = secret("grafana", {}, { GF_SECURITY_ADMIN_PASSWORD: Buffer.from("Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt").toString("base64") });
        const settings = { type: "kubernetes:core/v1:ConfigMap", name: "grafana-settings", props: { metadata: { name: "grafana-settings", namespace: NS }, data: { GF_USERS_ALLOW_SIGN_UP: "false" } } };
        expect(await run([env, settings, grafana([{ secretRef: { name: "grafana-credentials" } }, { configMapRef: { name: "grafana-settings" } }])])).toEqual([]);
        // A declared ConfigMap that lacks the password, and one that opens sign-up: read through.
        const open = { ...settings, props: { ...settings.props, data: { GF_USERS_ALLOW_SIGN_UP: "true" } } };
        expect((await run([open, grafana([{ configMapRef: { name: "grafana-settings" } }])])).map((v) => v.message.replace(fix, ""))).toEqual([
            "Deployment \"grafana-deployment\" container \"grafana\" runs grafana without GF_SECURITY_ADMIN_PASSWORD (from a generated secret), so its authentication is off",
            "Deployment \"grafana-deployment\" container \"grafana\" sets GF_USERS_ALLOW_SIGN_UP=true: anyone who reaches Grafana makes an account that reads every dashboard",
        ]);
        // A source the stack does not declare: cannot be verified, reported (mandatory on prod, advisory on dev), naming it.
        const unseen = grafana([{ secretRef: { name: "grafana-env" } }]);
        const verify = "; declare that ConfigMap or Secret in the stack, or give the setting in the container's own env (a secretKeyRef) or " +
            "command line, so the pack can see it: a server whose authentication it cannot see may have none.";
        const message = "Deployment \"grafana-deployment\" container \"grafana\" runs grafana with its environment partly from envFrom Secret \"grafana-env\", " +
            "which the stack does not declare, so whether it has GF_SECURITY_ADMIN_PASSWORD (from a generated secret) cannot be verified" + verify;
        expect(await run([env, unseen])).toEqual([{ policyName: "servers-require-authentication", resourceName: "grafana-deployment", enforcementLevel: "mandatory", message }]);
        expect((await run([unseen], "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory"]);
        // Its own env giving the setting is enough whatever envFrom holds (env wins over envFrom).
        expect(await run([k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [secretRef("GF_SECURITY_ADMIN_PASSWORD")], { envFrom: [{ secretRef: { name: "grafana-env" } }] })])).toEqual([]);
    });

    describe("Redis (the legacy Redis, anything run as redis-server)", () => {
        const conf = "/usr/local/etc/redis/redis.conf";
        const confKey = "usr_local_etc_redis_redis.conf";
        // As components/data/definitions.ts deploys the upstream image on Kubernetes: redis-server <conf>, the
        // conf a key of the workload's Secret, mounted file by file (components/runtime/kubernetes/secrets.ts).
        const k8sRedis = (image = "docker.io/library/redis:7.4.1-bookworm", args = ["redis-server", conf], secretName = "redis-credentials") =>
            deployment("redis", 6379, {
                role: "datastore",
                container: { image, args, env: [secretRef("REDISCLI_AUTH")], volumeMounts: [{ name: "secret-files", mountPath: conf, subPath: confKey, readOnly: true }] },
                spec: { volumes: [{ name: "secret-files", secret: { secretName, defaultMode: 0o400 } }] },
            });
        const redisSecret = (content: string) => secret("redis", { REDISCLI_AUTH: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt", [confKey]: content });
        const good = "requirepass Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt\nappendonly yes\ndir /data\n";
        // As on Docker: the image run by ID under the redis workload, the conf uploaded.
        const dockerRedis = (content: string, extra: Record<string, any> = {}) => dockerContainer("redis", "datastore", {
            image: "sha256:" + "4".repeat(64), command: ["redis-server", conf], envs: ["REDISCLI_AUTH=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt"],
            uploads: [{ file: conf, content, permissions: "0400", owner: "999", group: "999" }], ...extra,
        });
        const missing = "runs redis without requirepass (in the redis.conf it is started with, or --requirepass, from a generated secret), so its authentication is off";

        it("passes the platform's Redis (its generated redis.conf), --requirepass, and REDIS_PASSWORD where the image reads it", async () => {
            expect(await run([redisSecret(good), k8sRedis()])).toEqual([]);
            expect(await run([dockerRedis(good)])).toEqual([]);
            // The conf not known during preview (the password is generated): judged at `up`.
            expect(await run([redisSecret(UNKNOWN), k8sRedis()])).toEqual([]);
            expect(await run([dockerRedis(UNKNOWN)])).toEqual([]);
            expect(await run([k8sServer("redis", "docker.io/library/redis:7.4.1-bookworm", [], { args: ["redis-server", "--requirepass", "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt"] })])).toEqual([]);
            expect(await run([k8sServer("redis", "docker.io/bitnami/redis:7.4.1", [secretRef("REDIS_PASSWORD")])])).toEqual([]);
            // The offline stand-in (a local build) reads REDIS_PASSWORD, under the redis or the dragonfly workload.
            expect(await run([k8sServer("dragonfly", "localhost/ai-trading/redis:7.0.15-local", [secretRef("REDIS_PASSWORD")]), k8sServer("redis", "localhost/ai-trading/redis:7.0.15-local", [secretRef("REDIS_PASSWORD")])])).toEqual([]);
        });

        it("rejects a Redis with no visible authentication: no requirepass in its conf, none at all, REDIS_PASSWORD the upstream image ignores, redis-server under any name", async () => {
            const vs = await run([
                redisSecret("appendonly yes\nrequirepass \"\"\n"), k8sRedis(),
                k8sServer("redis", "docker.io/library/redis:7.4.1-bookworm", [secretRef("REDIS_PASSWORD")]),
                dockerRedis("appendonly yes\n# requirepass foobared\n"),
                dockerContainer("session-cache", "datastore", { image: "registry.example.com/ai-trading/cache:1.0.0", entrypoints: ["redis-server", "--port", "6379"] }),
            ]);
            expect(vs.map((v) => `${v.resourceName}: ${v.message.replace(fix, "")}`)).toEqual([
                `redis-deployment: Deployment "redis-deployment" container "redis" ${missing}`,
                `redis-deployment: Deployment "redis-deployment" container "redis" ${missing}`,
                `redis-container: Container "redis-container" ${missing}`,
                `session-cache-container: Container "session-cache-container" ${missing}`,
            ]);
        });

        it("reports a Redis whose conf the stack does not hold as unverifiable", async () => {
            const vs = await run([k8sRedis("docker.io/library/redis:7.4.1-bookworm", ["redis-server", conf], "redis-external")]);
            expect(vs.map((v) => v.message)).toEqual([
                `Deployment "redis-deployment" container "redis" runs redis with its configuration file ${conf} from Secret "redis-external", which the stack does not declare, ` +
                "so whether it has requirepass (in the redis.conf it is started with, or --requirepass, from a generated secret) cannot be verified; declare that ConfigMap or " +
                "Secret in the stack, or give the setting in the container's own env (a secretKeyRef) or command line, so the pack can see it: a server whose authentication it cannot see may have none.",
            ]);
            const baked = await run([k8sServer("redis", "docker.io/library/redis:7.4.1-bookworm", [], { args: ["redis-server", "/etc/redis/redis.conf"] })]);
            expect(baked.map((v) => v.message.split(", so whether")[0])).toEqual([
                "Deployment \"redis-deployment\" container \"redis\" runs redis with its configuration file /etc/redis/redis.conf of the image, which the pack cannot read",
            ]);
        });
    });

    describe("Dragonfly started with a flag file (session 45: its password no longer a variable)", () => {
        const flags = "/etc/dragonfly/secret.flags";
        const flagsKey = "etc_dragonfly_secret.flags";
        const image = "docker.dragonflydb.io/dragonflydb/dragonfly:v1.23.2";
        // As components/data/definitions.ts deploys it: --flagfile=<path>, the file a secret upload (Docker) or a key of the workload's Secret (Kubernetes).
        const k8sDragonfly = (secretName = "dragonfly-credentials") =>
            deployment("dragonfly", 6379, {
                role: "datastore",
                container: { image, args: [`--flagfile=${flags}`, "--dir", "/data"], env: [secretRef("REDISCLI_AUTH")], volumeMounts: [{ name: "secret-files", mountPath: flags, subPath: flagsKey, readOnly: true }] },
                spec: { volumes: [{ name: "secret-files", secret: { secretName, defaultMode: 0o400 } }] },
            });
        const dfSecret = (content: string) => secret("dragonfly", { REDISCLI_AUTH: "Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt", [flagsKey]: content });
        const dockerDragonfly = (content: string) => dockerContainer("dragonfly", "datastore", {
            image, command: [`--flagfile=${flags}`, "--dir", "/data"], envs: ["REDISCLI_AUTH_FILE=/run/secrets/rediscli_auth"],
            uploads: [{ file: flags, content, permissions: "0400", owner: "999", group: "999" }],
        });
        const good = "--requirepass=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt\n";
        const needs = "requirepass (in the flag file it is started with, DFLY_requirepass or --requirepass, from a generated secret)";

        it("passes the password in the flag file on both targets, and one not known during preview", async () => {
            expect(await run([dfSecret(good), k8sDragonfly()])).toEqual([]);
            expect(await run([dockerDragonfly(good)])).toEqual([]);
            expect(await run([dockerDragonfly(UNKNOWN)])).toEqual([]);
            expect(await run([dfSecret(UNKNOWN), k8sDragonfly()])).toEqual([]);
        });

        it("rejects a flag file without requirepass (or an empty one), and reports one the stack does not hold as unverifiable", async () => {
            const vs = await run([dockerDragonfly("--dir=/data\n# --requirepass=x\n"), dfSecret("--requirepass=\n"), k8sDragonfly()]);
            expect(vs.map((v) => v.message.replace(fix, ""))).toEqual([
                `Container "dragonfly-container" runs dragonfly without ${needs}, so its authentication is off`,
                `Deployment "dragonfly-deployment" container "dragonfly" runs dragonfly without ${needs}, so its authentication is off`,
            ]);
            const unseen = await run([k8sDragonfly("dragonfly-external")]);
            expect(unseen.map((v) => v.message.split(", so whether")[0])).toEqual([
                `Deployment "dragonfly-deployment" container "dragonfly" runs dragonfly with its flag file ${flags} from Secret "dragonfly-external", which the stack does not declare`,
            ]);
        });
    });

    it("rejects Grafana without its admin password (admin/admin) or with open sign-up, Dragonfly without requirepass, Weaviate without a scheme", async () => {
        const vs = await run([
            k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [{ name: "GF_SECURITY_ADMIN_USER", value: "admin" }, { name: "GF_USERS_ALLOW_SIGN_UP", value: "true" }]),
            dockerContainer("dragonfly", "datastore", { image: "sha256:" + "3".repeat(64), envs: ["DFLY_dir=/data"] }),
            k8sServer("weaviate", "localhost/ai-trading/weaviate:1.35.2", [{ name: "AUTHENTICATION_APIKEY_ENABLED", value: "false" }]),
        ]);
        expect(vs.map((v) => `${v.enforcementLevel} ${v.message.replace(fix, "")}`)).toEqual([
            "mandatory Deployment \"grafana-deployment\" container \"grafana\" runs grafana without GF_SECURITY_ADMIN_PASSWORD (from a generated secret), so its authentication is off",
            "mandatory Deployment \"grafana-deployment\" container \"grafana\" sets GF_USERS_ALLOW_SIGN_UP=true: anyone who reaches Grafana makes an account that reads every dashboard",
            "mandatory Container \"dragonfly-container\" runs dragonfly without requirepass (in the flag file it is started with, DFLY_requirepass or --requirepass, from a generated secret), so its authentication is off",
            "mandatory Deployment \"weaviate-deployment\" container \"weaviate\" runs weaviate without an authentication scheme (AUTHENTICATION_APIKEY_ENABLED=true with AUTHENTICATION_APIKEY_ALLOWED_KEYS from a generated secret), so its authentication is off",
        ]);
        const dev = await run([dockerContainer("grafana", "monitoring", { image: "docker.io/grafana/grafana:11.2.0", envs: ["GF_SECURITY_ADMIN_PASSWORD="] })], "dev");
        expect(dev.map((v) => `${v.enforcementLevel} ${v.message.replace(fix, "")}`)).toEqual([
            "advisory Container \"grafana-container\" runs grafana without GF_SECURITY_ADMIN_PASSWORD (from a generated secret), so its authentication is off",
        ]);
    });
});
