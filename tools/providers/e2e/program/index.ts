import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";

const pw = new random.RandomPassword("pw", { length: 44, special: false, minUpper: 4, minLower: 4, minNumeric: 4 });
const jwt = new random.RandomBytes("jwt", { length: 64 });
const labels = [{ label: "e2e.test", value: "providers" }];
const net = new docker.Network("net", { name: "e2e-prov-net", driver: "bridge", labels });
const vol = new docker.Volume("vol", { name: "e2e-prov-data", labels });
// run.sh passes the local Redis build's reference (its tag is in images/versions.json).
const redisRef = process.env.E2E_REDIS_IMAGE;
if (!redisRef) throw new Error("E2E_REDIS_IMAGE is not set: run this program through tools/providers/e2e/run.sh");
const redisImage = new docker.RemoteImage("redis-image", { name: redisRef, keepLocally: true });
const built = new docker.Image("built", {
  imageName: "e2e-prov/custom:1",
  build: { context: path.join(__dirname, "ctx"), dockerfile: path.join(__dirname, "ctx", "Dockerfile"), args: { UNUSED: "1" }, platform: "linux/amd64" },
  skipPush: true,
});

const redis = new docker.Container("redis", {
  name: "e2e-prov-redis",
  hostname: "redis",
  image: redisImage.imageId,
  envs: pulumi.secret(pw.result).apply((p) => [`REDIS_PASSWORD=${p}`, `X=${new pulumi.Config().get("x") ?? "1"}`]),
  networksAdvanced: [{ name: net.name, aliases: ["redis", "cache"] }],
  ports: [{ internal: 6379, external: 16399, ip: "127.0.0.1", protocol: "tcp" }],
  volumes: [{ volumeName: vol.name, containerPath: "/data" }],
  uploads: [
    { file: "/etc/e2e/note.txt", content: "uploaded before start\n", permissions: "0444" },
    // Owner-only for a non-root user: extracted from the archive with the tar header's uid/gid.
    { file: "/etc/e2e/owned.txt", content: "owned by 999\n", permissions: "0400", owner: "999", group: "999" },
  ],
  tmpfs: { "/tmp": "rw,noexec,nosuid,size=16m" },
  healthcheck: {
    tests: ["CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning ping | grep -q PONG'],
    interval: "1s", timeout: "3s", retries: 5, startPeriod: "1s",
  },
  memory: 128,
  cpus: "0.5",
  capabilities: { drops: ["ALL"], adds: ["SETUID", "SETGID"] },
  securityOpts: ["no-new-privileges:true"],
  privileged: false,
  labels,
  logDriver: "json-file",
  logOpts: { "max-size": "10m", "max-file": "3" },
  restart: "unless-stopped",
  mustRun: true,
  wait: true,
  waitTimeout: 60,
  destroyGraceSeconds: 5,
}, { dependsOn: [vol] });

// One-shot job from the built image: read-only root, an uploaded (bind-mounted) file that only its
// non-root user may read (0400, chowned on the host), output captured.
const job = new docker.Container("job", {
  name: "e2e-prov-job",
  image: built.imageName,
  entrypoints: ["/bin/sh", "-c"],
  command: ["cat /msg.txt /etc/e2e/secret.txt && getent hosts redis | awk '{print \"redis resolves\"}'"],
  networksAdvanced: [{ name: net.name, aliases: ["job"] }],
  uploads: [{ file: "/etc/e2e/secret.txt", content: pulumi.interpolate`jwt-prefix ${jwt.hex.apply((h) => h.slice(0, 8))}\n`, permissions: "0400", owner: "1000", group: "1000" }],
  readOnly: true,
  user: "1000:1000",
  restart: "no",
  mustRun: false,
  attach: true,
  logs: true,
  destroyGraceSeconds: 1,
}, { dependsOn: [redis] });

export const password = pw.result;
export const redisId = redis.id;
export const jobExit = job.exitCode;
export const jobLogs = job.containerLogs;
export const imageId = redisImage.imageId;
export const builtName = built.imageName;
export const builtDigest = built.repoDigest;
export const netName = net.name;
export const mountpoint = vol.mountpoint;
export const redisNets = redis.networkDatas;
