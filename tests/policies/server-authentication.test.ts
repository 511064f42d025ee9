import { describe, expect, it } from "vitest";
import { deployment, devStack, dockerContainer, prodStack } from "./fixtures";
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
            "Container \"dragonfly-container\" runs dragonfly without requirepass (DFLY_requirepass from a generated secret), so its authentication is off",
        ]);
        // Not judged on what it lacks when part of its environment cannot be read.
        const unread = [
            k8sServer("grafana", "docker.io/grafana/grafana:11.2.0", [], { envFrom: [{ secretRef: { name: "grafana-env" } }] }),
            dockerContainer("grafana", "monitoring", { image: "docker.io/grafana/grafana:11.2.0", envs: [UNKNOWN] }),
        ];
        expect(await run(unread)).toEqual([]);
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
            "mandatory Container \"dragonfly-container\" runs dragonfly without requirepass (DFLY_requirepass from a generated secret), so its authentication is off",
            "mandatory Deployment \"weaviate-deployment\" container \"weaviate\" runs weaviate without an authentication scheme (AUTHENTICATION_APIKEY_ENABLED=true with AUTHENTICATION_APIKEY_ALLOWED_KEYS from a generated secret), so its authentication is off",
        ]);
        const dev = await run([dockerContainer("grafana", "monitoring", { image: "docker.io/grafana/grafana:11.2.0", envs: ["GF_SECURITY_ADMIN_PASSWORD="] })], "dev");
        expect(dev.map((v) => `${v.enforcementLevel} ${v.message.replace(fix, "")}`)).toEqual([
            "advisory Container \"grafana-container\" runs grafana without GF_SECURITY_ADMIN_PASSWORD (from a generated secret), so its authentication is off",
        ]);
    });
});
