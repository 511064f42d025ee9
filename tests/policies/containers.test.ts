import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { isUnderPrefix, parseImageRef, qualifiedRepository, unpinnedReason } from "../../catalog/images";
import { disallowedRepository } from "../../policies/rules/allowed-image-registries";
import { isImageBuildArg } from "../../policies/lib/image-builds";
import { isRootUser } from "../../policies/lib/security";
import {
    asEveryPodKind, backupCronJob, container, deployment, dockerContainer, dockerNginx, dockerPostgres, dockerPrometheus, dockerService, edit,
    remoteImage, statefulSet, writeDockerfile,
} from "./fixtures";
import { loadConfig, runPack, summary, TestResource, UNKNOWN, Violation } from "./run-pack";

const only = (name: string) => ({ only: [name] });
/** A Dockerfile whose every FROM is a build argument named as an image, so only the arguments given are checked. */
const ARGS_ONLY_DOCKERFILE = writeDockerfile("ARG NODE_IMAGE\nARG SERVICES_IMAGE\nFROM ${NODE_IMAGE} AS build\nFROM ${SERVICES_IMAGE}\n");
/** The program's image build (components/runtime/image-build.ts): a pinned name under `repository` and the given build arguments. */
const built = (name: string, args: Record<string, string> | string, repository = "localhost/ai-trading"): TestResource => ({
    type: "docker:index/image:Image", name,
    props: { imageName: `${repository}/${name}:0.1.0`, build: { context: path.dirname(ARGS_ONLY_DOCKERFILE), dockerfile: ARGS_ONLY_DOCKERFILE, args, platform: "linux/amd64" }, skipPush: !repository.startsWith("registry.") },
});
/** An image build of a Dockerfile written for the test. */
const builtFrom = (name: string, dockerfile: string, args: Record<string, unknown> | typeof UNKNOWN = {}): TestResource & { file: string } => {
    const file = writeDockerfile(dockerfile);
    return { type: "docker:index/image:Image", name, file, props: { imageName: `localhost/ai-trading/${name}:0.1.0`, build: { context: path.dirname(file), dockerfile: file, args, platform: "linux/amd64" }, skipPush: true } };
};
/** An image build with the given `build` bag as the engine hands it over (paths as written, unknowns). */
const imageBuild = (name: string, build: Record<string, unknown>): TestResource =>
    ({ type: "docker:index/image:Image", name, props: { imageName: `localhost/ai-trading/${name}:0.1.0`, build } });
/** Base images no build argument names: literal, an argument left at its ARG default or not named as an image, references made of arguments. */
const LITERAL_BASES = [
    "# escape=\\",
    "ARG NODE_IMAGE=node:latest",
    "ARG BASE=debian:stable",
    "ARG REG=docker.io",
    "ARG TAG",
    "FROM ${NODE_IMAGE} AS build",
    "FROM --platform=linux/amd64 \\",
    "    ${BASE} AS runtime",
    "FROM build",
    "FROM scratch",
    "# FROM node:latest (a comment)",
    "from node:latest",
    "FROM ${REG}/library/alpine:${TAG:-3.19}",
    "FROM ${REG}/library/redis:${TAG:-latest}",
].join("\n");
const PIN = "pin a version tag (postgres:16.4) or a digest (name@sha256:...).";
const messages = (vs: Violation[]) => vs.map((v) => v.message);
const compliant = () => [
    dockerPostgres(), dockerService(), dockerNginx(), dockerPrometheus(),
    deployment("api-gateway", 3001), statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999),
    backupCronJob("postgres", "postgres:16.4-bookworm", 999),
];

describe("no-privileged-containers", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("no-privileged-containers"));

    it("passes hardened containers", async () => {
        expect(await run(compliant())).toEqual([]);
    });

    it("rejects privileged, host namespaces, the Docker socket and devices on Docker", async () => {
        const bad = dockerService("api-gateway", {
            privileged: true,
            networkMode: "host",
            pidMode: "host",
            volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }, { hostPath: "/srv/config", containerPath: "/config" }],
            mounts: [{ type: "bind", source: "/", target: "/host" }],
            devices: [{ hostPath: "/dev/kvm" }],
        });
        const suffix = ". A compromised process there owns the host: remove it (use published loopback ports, named volumes and a user-defined network instead).";
        expect(messages(await run([bad]))).toEqual([
            "runs privileged",
            "shares the host network namespace (networkMode: \"host\")",
            "shares the host PID namespace (pidMode: \"host\")",
            "mounts the container runtime socket /var/run/docker.sock (root on the host)",
            "bind-mounts the host path /srv/config (use a named volume or an upload)",
            "bind-mounts the host path /",
            "passes host devices into the container (devices)",
        ].map((p) => `Container "api-gateway-container" ${p}${suffix}`));
    });

    it("rejects the host network as a networksAdvanced entry, device cgroup rules and GPUs on Docker", async () => {
        const bad = dockerService("api-gateway", {
            networksAdvanced: [{ name: "host" }],
            deviceCgroupRules: ["c *:* rwm"],
            gpus: "all",
        });
        const other = dockerService("order-management", { deviceRequests: [{ driver: "nvidia", count: -1, capabilities: [["gpu"]] }] });
        // The NVIDIA runtime (NVIDIA_VISIBLE_DEVICES) and privileged given as the string "true".
        const runtime = dockerService("ml-predictor", { runtime: "nvidia", envs: ["NVIDIA_VISIBLE_DEVICES=all"], privileged: "true" });
        expect((await run([bad, other, runtime])).map((v) => v.message.split(". ")[0])).toEqual([
            "Container \"api-gateway-container\" shares the host network namespace (networksAdvanced name \"host\")",
            "Container \"api-gateway-container\" opens host devices to the container (deviceCgroupRules)",
            "Container \"api-gateway-container\" passes host GPUs into the container (deviceRequests/gpus)",
            "Container \"order-management-container\" passes host GPUs into the container (deviceRequests/gpus)",
            "Container \"ml-predictor-container\" runs privileged",
            "Container \"ml-predictor-container\" passes host GPUs into the container (runtime nvidia)",
        ]);
        expect(await run([dockerService("api-gateway", { networksAdvanced: [{ name: "ai-trading-dev-net" }, { name: "other-net" }], gpus: "" })])).toEqual([]);
    });

    it("rejects joining another container's namespaces: Docker container:<name> modes, Kubernetes shareProcessNamespace", async () => {
        const bad = dockerService("api-gateway", { networkMode: "container:postgres-container", pidMode: "container:postgres-container", ipcMode: "container:abc123" });
        const sibling = ". A compromised process there reads the other container's secrets: remove it (containers talk over the network by service name and share files through a volume).";
        expect(messages(await run([bad]))).toEqual([
            "joins the network namespace of another container (networkMode: \"container:postgres-container\")",
            "joins the PID namespace of another container (pidMode: \"container:postgres-container\")",
            "joins the IPC namespace of another container (ipcMode: \"container:abc123\")",
        ].map((p) => `Container "api-gateway-container" ${p}${sibling}`));
        const pod = deployment("api-gateway", 3001, { spec: { shareProcessNamespace: true } });
        expect(messages(await run([pod]))).toEqual([
            `Deployment "api-gateway-deployment" sets shareProcessNamespace: true (its containers see each other's processes, memory and environment)${sibling}`,
        ]);
        // The engine's own modes (a network by name, private/shareable IPC, an explicit false) are fine.
        const fine = dockerService("api-gateway", { networkMode: "ai-trading-dev-net", ipcMode: "shareable", pidMode: "" });
        expect(await run([fine, deployment("order-management", 3002, { spec: { shareProcessNamespace: false } })])).toEqual([]);
    });

    it("rejects privileged pods, host namespaces and hostPath volumes on Kubernetes", async () => {
        const d = deployment("api-gateway", 3001, {
            container: { securityContext: { privileged: true, allowPrivilegeEscalation: true } },
            spec: { hostNetwork: true, volumes: [{ name: "sock", hostPath: { path: "/run/containerd/containerd.sock" } }, { name: "logs", hostPath: { path: "/var/log" } }] },
        });
        expect((await run([d])).map((v) => v.message.split(". ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" sets hostNetwork: true",
            "Deployment \"api-gateway-deployment\" mounts the container runtime socket /run/containerd/containerd.sock (root on the host)",
            "Deployment \"api-gateway-deployment\" mounts the hostPath volume /var/log (use a PersistentVolumeClaim, emptyDir or ConfigMap)",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" runs privileged",
        ]);
        const cfg = { all: "mandatory" as const, "no-privileged-containers": { allowedK8sHostPaths: ["/var/log"] } };
        expect(await runPack([edit(d, (p) => { p.spec.template.spec.volumes = [{ name: "logs", hostPath: { path: "/var/log" } }]; p.spec.template.spec.hostNetwork = false; p.spec.template.spec.containers[0].securityContext.privileged = false; })], cfg, only("no-privileged-containers"))).toEqual([]);
    });

    it("rejects storage that is a host directory under another name: a bound Docker volume, a hostPath or local PersistentVolume", async () => {
        const volume = (name: string, driverOpts: Record<string, unknown>): TestResource => ({ type: "docker:index/volume:Volume", name, props: { name, driver: "local", driverOpts } });
        const pv = (name: string, spec: Record<string, unknown>): TestResource =>
            ({ type: "kubernetes:core/v1:PersistentVolume", name, props: { apiVersion: "v1", kind: "PersistentVolume", metadata: { name }, spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], ...spec } } });
        const anonymous = dockerService("api-gateway", { mounts: [{ type: "volume", target: "/host", volumeOptions: { driverOptions: { type: "none", o: "bind", device: "/" } } }] });
        expect((await run([
            volume("etc", { type: "none", o: "bind", device: "/etc" }),
            volume("data", { type: "none", o: "rw,rbind", device: "/srv/data" }),
            volume("nfs", { type: "nfs", o: "addr=10.0.0.1,rw", device: ":/exports" }),
            volume("plain", {}),
            // An overlay whose lower layer is the host's root, and a container taking another's volumes.
            volume("overlay", { type: "overlay", device: "overlay", o: "lowerdir=/,upperdir=/tmp/u,workdir=/tmp/w" }),
            anonymous,
            dockerService("worker", { volumes: [{ fromContainer: "portainer" }] }),
            pv("node-root", { hostPath: { path: "/var/run/docker.sock" } }),
            pv("disk", { local: { path: "/mnt/disks/ssd1" }, nodeAffinity: {} }),
            pv("claimed", { csi: { driver: "ebs.csi.aws.com", volumeHandle: "vol-1" } }),
        ])).map((v) => v.message.split(": ")[0].split(". ")[0])).toEqual([
            "Volume \"etc\" binds the host path /etc (driverOpts, a bind device or an overlay lowerdir)",
            "Volume \"data\" binds the host path /srv/data (driverOpts, a bind device or an overlay lowerdir)",
            "Volume \"overlay\" binds the host path / (driverOpts, a bind device or an overlay lowerdir)",
            "Container \"api-gateway-container\" bind-mounts the host path /",
            "Container \"worker-container\" mounts every volume of the container \"portainer\" (volumes fromContainer), host paths included, unchecked here",
            "PersistentVolume \"node-root\" binds the container runtime socket /var/run/docker.sock (root on the host) (spec.hostPath)",
            "PersistentVolume \"disk\" binds the host path /mnt/disks/ssd1 (spec.local)",
        ]);
        const allowing = { all: "mandatory" as const, "no-privileged-containers": { allowedK8sHostPaths: ["/mnt/disks/ssd1"], allowedDockerHostPaths: ["/srv/data"] } };
        expect(await runPack([volume("data", { type: "none", o: "bind", device: "/srv/data/" }), pv("disk", { local: { path: "/mnt/disks/ssd1" } })], allowing, only("no-privileged-containers"))).toEqual([]);
    });

    it("rejects a host path given as a Docker volumes[].volumeName, which the engine binds as hostPath (session 41)", async () => {
        // The provider writes volumeName (else hostPath) into the engine's Binds as "<source>:<containerPath>",
        // and the engine bind-mounts a source that is an absolute path: this was the Docker socket, unseen.
        const bad = dockerService("api-gateway", { volumes: [
            { volumeName: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" },
            { volumeName: "/srv/config", containerPath: "/config", readOnly: true },
        ] });
        expect((await run([bad])).map((v) => v.message.split(". A compromised")[0])).toEqual([
            "Container \"api-gateway-container\" mounts the container runtime socket /var/run/docker.sock (root on the host), given as volumes[].volumeName (an absolute path there is a bind mount to the engine)",
            "Container \"api-gateway-container\" bind-mounts the host path /srv/config (use a named volume or an upload), given as volumes[].volumeName (an absolute path there is a bind mount to the engine)",
        ]);
        // A named volume (the program's own, as dockerPostgres mounts its data) and a listed host path pass.
        const allowing = { all: "mandatory" as const, "no-privileged-containers": { allowedDockerHostPaths: ["/srv/config"] } };
        expect(await run([dockerPostgres()])).toEqual([]);
        expect(await runPack([dockerService("api-gateway", { volumes: [{ volumeName: "/srv/config/", containerPath: "/config" }] })], allowing, only("no-privileged-containers"))).toEqual([]);
    });
});

describe("no-privileged-containers: runtime classes and cgroup parents (session 41, round 2)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("no-privileged-containers"));
    const runtimeFix = ". Its containers run as that handler runs them, which the pack cannot see (a handler may run them privileged, " +
        "or without the runtime's isolation): remove it, or list the class in allowedRuntimeClasses after review.";

    it("rejects a pod's runtimeClassName on every pod-bearing kind unless listed in allowedRuntimeClasses", async () => {
        const kinds = asEveryPodKind(deployment("api-gateway", 3001, { spec: { runtimeClassName: "nvidia-privileged" } }));
        const found = messages(await run(kinds));
        expect(found).toHaveLength(kinds.length);
        for (const r of kinds) expect(found, r.name).toContain(`${r.type.split(":").pop()} "${r.name}" runs under the RuntimeClass "nvidia-privileged" (runtimeClassName)${runtimeFix}`);
        const allowing = { all: "mandatory" as const, "no-privileged-containers": { allowedRuntimeClasses: ["gvisor"] } };
        expect(await run(asEveryPodKind(deployment("api-gateway", 3001, { spec: { runtimeClassName: "gvisor" } })), allowing)).toEqual([]);
        expect(messages(await run([deployment("api-gateway", 3001, { spec: { runtimeClassName: "nvidia-privileged" } })], allowing))).toHaveLength(1);
        // The cluster's default handler (no class, or one not known during preview) passes.
        expect(await run([deployment("api-gateway", 3001, { spec: { runtimeClassName: null } }), deployment("order-management", 3002, { spec: { runtimeClassName: UNKNOWN } })])).toEqual([]);
    });

    it("rejects a Docker container's cgroupParent", async () => {
        const bad = dockerService("api-gateway", { cgroupParent: "/system.slice" });
        expect(messages(await run([bad]))).toEqual([
            "Container \"api-gateway-container\" sets cgroupParent \"/system.slice\": the engine makes its cgroup there, outside the parent the engine's " +
            "own limits hold every container under, beside the host's services. Remove it (the engine's default parent keeps it with the other containers).",
        ]);
        expect(await run([dockerService("api-gateway", { cgroupParent: "" }), dockerService("order-management", { cgroupParent: UNKNOWN })])).toEqual([]);
    });
});

// Session 42's policy hunt: a Docker runtime other than nvidia and a DRA claim's adminAccess passed.
describe("no-privileged-containers: Docker runtimes and DRA admin access (session 42)", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("no-privileged-containers"));
    const allowing = (settings: Record<string, string[]>) => ({ all: "mandatory" as const, "no-privileged-containers": settings });

    it("rejects a Docker runtime other than the engine's default runc unless listed in allowedDockerRuntimes; nvidia stays a GPU grant", async () => {
        const runtimes = ["sysbox-runc", "kata", "my-runtime", "io.containerd.runsc.v1"];
        const bad = runtimes.map((runtime, i) => dockerService(["api-gateway", "order-management", "trading-engine", "data-bridge"][i], { runtime }));
        const found = messages(await run(bad));
        expect(found).toEqual(bad.map((r, i) => `Container "${r.name}" runs under the Docker runtime "${runtimes[i]}" (runtime). The engine runs it as ` +
            "that runtime's registration says, which the pack cannot see (a runtime may run it without runc's namespaces, seccomp or cgroup " +
            "limits, or with the host's devices): remove it (the engine's default runc), or list the runtime in allowedDockerRuntimes after review."));
        // runc (the default, named), none, and a value unknown during preview pass; a listed runtime passes.
        expect(await run([dockerService("api-gateway", { runtime: "runc" }), dockerService("order-management", { runtime: "" }), dockerService("trading-engine", { runtime: UNKNOWN })])).toEqual([]);
        expect(await run([dockerService("api-gateway", { runtime: "sysbox-runc" })], allowing({ allowedDockerRuntimes: ["sysbox-runc"] }))).toEqual([]);
        expect(messages(await run([dockerService("api-gateway", { runtime: "kata" })], allowing({ allowedDockerRuntimes: ["sysbox-runc"] })))).toHaveLength(1);
        // nvidia: reported as the GPU grant it is (once, with gpus too), and allowed only by listing it.
        const gpu = dockerService("ml-predictor", { runtime: "nvidia" });
        expect(messages(await run([gpu])).map((m) => m.split(". ")[0])).toEqual(["Container \"ml-predictor-container\" passes host GPUs into the container (runtime nvidia)"]);
        expect(messages(await run([dockerService("ml-predictor", { runtime: "nvidia", gpus: "all" })])).map((m) => m.split(". ")[0])).toEqual([
            "Container \"ml-predictor-container\" passes host GPUs into the container (deviceRequests/gpus)",
        ]);
        expect(await run([gpu], allowing({ allowedDockerRuntimes: ["nvidia"] }))).toEqual([]);
    });

    it("rejects adminAccess in a DRA ResourceClaim or ResourceClaimTemplate of every version (and their Lists) unless the claim is listed", async () => {
        const request = (extra: Record<string, any>) => ({ name: "gpu", ...extra });
        const claim = (version: string, kind: string, requests: any[], name = "debug-gpu") => ({
            type: `kubernetes:resource.k8s.io/${version}:${kind}`, name,
            props: kind === "ResourceClaim"
                ? { metadata: { name, namespace: "ai-trading" }, spec: { devices: { requests } } }
                : { metadata: { name, namespace: "ai-trading" }, spec: { spec: { devices: { requests } } } },
        });
        const legacy = request({ deviceClassName: "gpu.example.com", adminAccess: true });
        const exactly = request({ exactly: { deviceClassName: "gpu.example.com", adminAccess: true } });
        const bad = [
            claim("v1alpha3", "ResourceClaim", [legacy]),
            claim("v1beta1", "ResourceClaimTemplate", [legacy]),
            claim("v1beta2", "ResourceClaim", [exactly]),
            claim("v1", "ResourceClaimTemplate", [exactly]),
            { type: "kubernetes:resource.k8s.io/v1beta1:ResourceClaimList", name: "claims", props: { items: [claim("v1beta1", "ResourceClaim", [legacy], "in-a-list").props] } },
        ];
        const found = messages(await run(bad));
        const fix = (name: string) => ": a pod using the claim gets privileged access to devices already allocated to other pods (their memory and state included), " +
            `past the scheduler's allocation; remove it, or list the claim ("${name}") in allowedAdminAccessClaims after review.`;
        expect(found).toEqual([
            `ResourceClaim "debug-gpu" requests admin access to its devices (spec.devices.requests[gpu].adminAccess)${fix("debug-gpu")}`,
            `ResourceClaimTemplate "debug-gpu" requests admin access to its devices (spec.spec.devices.requests[gpu].adminAccess)${fix("debug-gpu")}`,
            `ResourceClaim "debug-gpu" requests admin access to its devices (spec.devices.requests[gpu].exactly.adminAccess)${fix("debug-gpu")}`,
            `ResourceClaimTemplate "debug-gpu" requests admin access to its devices (spec.spec.devices.requests[gpu].exactly.adminAccess)${fix("debug-gpu")}`,
            `ResourceClaimList "claims" requests admin access to its devices (spec.devices.requests[gpu].adminAccess)${fix("in-a-list")}`,
        ]);
        // A claim without admin access, adminAccess false or unknown during preview, and a listed claim pass.
        expect(await run([
            claim("v1beta1", "ResourceClaim", [request({ deviceClassName: "gpu.example.com" }), request({ name: "b", adminAccess: false }), request({ name: "c", adminAccess: UNKNOWN })]),
            claim("v1", "ResourceClaim", [request({ exactly: { deviceClassName: "gpu.example.com", adminAccess: false } })], "plain-gpu"),
        ])).toEqual([]);
        expect(await run(bad.slice(0, 4), allowing({ allowedAdminAccessClaims: ["debug-gpu"] }))).toEqual([]);
    });
});

describe("drop-all-capabilities", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("drop-all-capabilities"));

    it("passes drops ALL (adding NET_BIND_SERVICE is allowed)", async () => {
        expect(await run([...compliant(), dockerService("api-gateway", { capabilities: { drops: ["all"], adds: ["CAP_NET_BIND_SERVICE"] } })])).toEqual([]);
    });

    it("rejects missing drops and extra adds, on both targets", async () => {
        const docker = dockerService("api-gateway", { capabilities: { adds: ["SYS_ADMIN"] } });
        const k8s = deployment("api-gateway", 3001, { container: { securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ["NET_RAW"], add: ["NET_ADMIN"] } } } });
        expect(messages(await run([docker, k8s]))).toEqual([
            "Container \"api-gateway-container\" does not drop ALL capabilities; set capabilities: { drops: [\"ALL\"] } and add back only what the process needs (exemptions: policy config capabilityExemptions).",
            "Container \"api-gateway-container\" adds capabilities SYS_ADMIN; set capabilities: { drops: [\"ALL\"] } and add back only what the process needs (exemptions: policy config capabilityExemptions).",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" does not drop ALL capabilities; set securityContext.capabilities.drop: [\"ALL\"] on every container (exemptions: policy config capabilityExemptions).",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" adds capabilities NET_ADMIN; set securityContext.capabilities.drop: [\"ALL\"] on every container (exemptions: policy config capabilityExemptions).",
        ]);
    });

    it("honours per-workload capabilityExemptions", async () => {
        const pg = dockerPostgres({ capabilities: { drops: ["ALL"], adds: ["CHOWN", "SETUID", "SETGID"] } });
        expect(summary(await run([pg]))).toEqual(["drop-all-capabilities postgres-container"]);
        const cfg = { all: "mandatory" as const, "drop-all-capabilities": { capabilityExemptions: { postgres: ["CHOWN", "SETUID", "SETGID"] } } };
        expect(await run([pg], cfg)).toEqual([]);
    });
});

describe("run-as-non-root", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("run-as-non-root"));

    it("passes explicit non-root users", async () => {
        expect(await run(compliant())).toEqual([]);
    });

    it("rejects root or unset users", async () => {
        const rs = [
            dockerService("api-gateway", { user: undefined }),
            dockerPostgres({ user: "0:0" }),
            deployment("api-gateway", 3001, { container: { securityContext: { allowPrivilegeEscalation: false, runAsUser: 0 } }, spec: { securityContext: {} } }),
            deployment("central-hub", 7000, { container: { securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 0 } } }),
        ];
        expect((await run(rs)).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" sets no user, so it runs as the image's user (often root)",
            "Container \"postgres-container\" runs as \"0:0\" (root)",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" does not set runAsNonRoot: true",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" sets runAsUser: 0",
            "Deployment \"central-hub-deployment\" container \"central-hub\" sets runAsUser: 0",
        ]);
    });

    it("inherits the pod securityContext and honours rootExemptions (workload or image)", async () => {
        const inherit = deployment("api-gateway", 3001, { container: { securityContext: { allowPrivilegeEscalation: false } } });
        expect(await run([inherit])).toEqual([]);
        const pg = dockerPostgres({ user: undefined });
        const cfg = { all: "mandatory" as const, "run-as-non-root": { rootExemptions: ["postgres"] } };
        expect(await run([pg], cfg)).toEqual([]);
        const byImage = dockerContainer("pg-replica", "datastore", { user: "root", image: "postgres:16.4-bookworm" });
        expect(await run([byImage], cfg)).toEqual([]);
        expect(isRootUser("10001:0")).toBe(false);
        expect(isRootUser("root:root")).toBe(true);
    });
});

describe("no-privilege-escalation", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("no-privilege-escalation"));

    it("passes no-new-privileges and allowPrivilegeEscalation false with RuntimeDefault seccomp", async () => {
        expect(await run(compliant())).toEqual([]);
    });

    it("rejects missing no-new-privileges and unconfined profiles", async () => {
        const docker = dockerService("api-gateway", { securityOpts: ["seccomp=unconfined"] });
        const k8s = deployment("api-gateway", 3001, {
            container: { securityContext: { runAsNonRoot: true, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "Unconfined" } } },
        });
        expect((await run([docker, k8s])).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" does not set securityOpts [\"no-new-privileges:true\"]",
            "Container \"api-gateway-container\" disables a kernel confinement (securityOpts \"seccomp=unconfined\")",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" does not set allowPrivilegeEscalation: false",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" has seccompProfile Unconfined (needs RuntimeDefault or Localhost)",
        ]);
    });

    it("reads securityOpts as the engine does: the last no-new-privileges wins, an allow-all inline seccomp profile, a bare disable", async () => {
        const docker = dockerService("api-gateway", { securityOpts: ["no-new-privileges:true", "no-new-privileges:false", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "disable", "writable-cgroups=true"] });
        expect((await run([docker])).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" sets securityOpts \"no-new-privileges:false\" last (the engine keeps the last no-new-privileges), not \"no-new-privileges:true\"",
            "Container \"api-gateway-container\" disables a kernel confinement (securityOpts seccomp with an inline profile whose defaultAction allows every system call)",
            "Container \"api-gateway-container\" disables a kernel confinement (securityOpts \"disable\")",
            "Container \"api-gateway-container\" disables a kernel confinement (securityOpts \"writable-cgroups=true\")",
        ]);
        // A strict inline profile and a repeated true are fine.
        expect(await run([dockerService("api-gateway", { securityOpts: ["no-new-privileges", "no-new-privileges:true", 'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}'] })])).toEqual([]);
    });
});

// Session 43's policy hunt: an inline seccomp profile whose default refuses but which allows, by name, the
// system calls Docker's default profile refuses (unshare: a user namespace with no capability; keyctl,
// userfaultfd, bpf, mount, ...) passed: only an allow-all defaultAction was judged.
describe("no-privilege-escalation: inline seccomp profiles allowing what Docker's default refuses (session 43)", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("no-privilege-escalation"));
    const profile = (syscalls: unknown[]) => `seccomp=${JSON.stringify({ defaultAction: "SCMP_ACT_ERRNO", syscalls })}`;

    it("rejects a profile allowing unshare, keyctl, userfaultfd, mount or an unfiltered clone, by names or the legacy name, with ALLOW or LOG", async () => {
        const docker = dockerService("api-gateway", {
            securityOpts: ["no-new-privileges:true", profile([
                { names: ["read", "write", "unshare", "keyctl"], action: "SCMP_ACT_ALLOW" },
                { name: "userfaultfd", action: "SCMP_ACT_LOG" },
                { names: ["mount", "clone"], action: "SCMP_ACT_ALLOW" },
            ])],
        });
        expect((await run([docker])).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" disables a kernel confinement (securityOpts seccomp with an inline profile that allows clone, keyctl, mount, unshare, userfaultfd, which Docker's default profile refuses)",
        ]);
    });

    it("passes a profile allowing ordinary calls, a clone filtered by its flags as the default profile's, and refusing the dangerous ones", async () => {
        const docker = dockerService("api-gateway", {
            securityOpts: ["no-new-privileges:true", profile([
                { names: ["read", "write", "openat", "ptrace", "io_uring_setup"], action: "SCMP_ACT_ALLOW" },
                { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }] },
                { names: ["unshare", "keyctl", "clone3"], action: "SCMP_ACT_ERRNO" },
            ])],
        });
        expect(await run([docker])).toEqual([]);
    });
});

describe("read-only-root-filesystem", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("read-only-root-filesystem"));

    it("requires it for role=service only", async () => {
        expect(await run(compliant())).toEqual([]);
        const rs = [
            dockerService("api-gateway", { readOnly: false }),
            dockerPostgres({ readOnly: false }),
            deployment("central-hub", 7000, { container: { securityContext: { allowPrivilegeEscalation: false } } }),
        ];
        expect(messages(await run(rs))).toEqual([
            "Container \"api-gateway-container\" does not set readOnly: true; set readOnly: true and mount a tmpfs (tmpfs: { \"/tmp\": \"rw,size=64m\" }) where the service writes.",
            "Deployment \"central-hub-deployment\" container \"central-hub\" does not set readOnlyRootFilesystem: true; set securityContext.readOnlyRootFilesystem: true and mount an emptyDir at /tmp.",
        ]);
        const cfg = { all: "mandatory" as const, "read-only-root-filesystem": { roles: ["service", "datastore"], exemptWorkloads: ["central-hub", "api-gateway"] } };
        expect(summary(await run(rs, cfg))).toEqual(["read-only-root-filesystem postgres-container"]);
    });
});

describe("emptydir-size-limit", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, only("emptydir-size-limit"));

    it("passes emptyDirs with a sizeLimit (and one unknown during preview)", async () => {
        const d = deployment("api-gateway", 3001, { spec: { volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, { name: "cache", emptyDir: { sizeLimit: UNKNOWN } }] } });
        expect(await run([...compliant(), d])).toEqual([]);
    });

    it("rejects an emptyDir without a (positive) sizeLimit on prod, in any workload kind; not applicable on dev", async () => {
        const d = deployment("api-gateway", 3001, {
            spec: { volumes: [{ name: "tmp", emptyDir: {} }, { name: "shm", emptyDir: { medium: "Memory" } }, { name: "zero", emptyDir: { sizeLimit: "0Mi" } }] },
        });
        const cj = edit(backupCronJob("postgres", "postgres:16.4-bookworm", 999), (p) => {
            p.spec.jobTemplate.spec.template.spec.volumes = [{ name: "run-outcome", emptyDir: {} }];
        });
        const fix = "Set emptyDir.sizeLimit to what the directory needs (the kubelet evicts this pod alone when it outgrows it).";
        expect(messages(await run([d, cj]))).toEqual([
            `Deployment "api-gateway-deployment" emptyDir volume "tmp" has no sizeLimit: it can fill the node's disk and get the node's other pods evicted. ${fix}`,
            `Deployment "api-gateway-deployment" emptyDir volume "shm" (medium: Memory) has no sizeLimit: it can fill the node's memory and get the node's other pods evicted. ${fix}`,
            `Deployment "api-gateway-deployment" emptyDir volume "zero" has no sizeLimit: it can fill the node's disk and get the node's other pods evicted. ${fix}`,
            `CronJob "postgres-backup-cronjob" emptyDir volume "run-outcome" has no sizeLimit: it can fill the node's disk and get the node's other pods evicted. ${fix}`,
        ]);
        expect(await run([d, cj], "dev")).toEqual([]);
        expect(await run([dockerService()])).toEqual([]);
    });
});

describe("pull-never-local-images", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("pull-never-local-images"));
    const localK8s = { all: "mandatory" as const, "pull-never-local-images": { localImagePrefixes: ["localhost/ai-trading/"] } };

    it("rejects Never for a registry image (prod: any image), init containers too", async () => {
        const d = deployment("api-gateway", 3001, {
            container: { image: "postgres:16.4-bookworm", imagePullPolicy: "Never" },
            spec: { initContainers: [{ ...container("migrate", 0), image: "localhost/ai-trading/services:0.1.0", imagePullPolicy: "Never" }] },
        });
        const fix = ": the pod starts only on a node where that image was pre-loaded, and runs whatever image the node holds under that name. " +
            "Use IfNotPresent (or Always) for registry images; Never is for images imported into the nodes, listed in localImagePrefixes.";
        expect(messages(await run([d]))).toEqual([
            `Deployment "api-gateway-deployment" init container "migrate" runs the registry image localhost/ai-trading/services:0.1.0 with imagePullPolicy: Never${fix}`,
            `Deployment "api-gateway-deployment" container "api-gateway" runs the registry image postgres:16.4-bookworm with imagePullPolicy: Never${fix}`,
        ]);
        // local-k8s lists its imported images: Never is fine for them, not for an upstream one beside them.
        expect(messages(await runPack([d], localK8s, only("pull-never-local-images")))).toEqual([
            `Deployment "api-gateway-deployment" container "api-gateway" runs the registry image postgres:16.4-bookworm with imagePullPolicy: Never${fix}`,
        ]);
    });

    it("passes IfNotPresent/Always anywhere, Never for listed local images, and images unknown during preview", async () => {
        const pulled = deployment("api-gateway", 3001, { container: { imagePullPolicy: "IfNotPresent" } });
        const always = deployment("order-management", 3002, { container: { imagePullPolicy: "Always" } });
        const local = deployment("risk-management", 3003, { container: { image: "localhost/ai-trading/services:0.1.0", imagePullPolicy: "Never" } });
        const unknown = deployment("market-data", 3004, { container: { image: UNKNOWN, imagePullPolicy: "Never" } });
        expect(await run([...compliant(), pulled, always, unknown])).toEqual([]);
        expect(await runPack([...compliant(), pulled, always, local, unknown], localK8s, only("pull-never-local-images"))).toEqual([]);
        expect(await run([dockerService()])).toEqual([]);
    });
});

describe("resource-limits", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("resource-limits"));

    it("passes memory + cpus (Docker) and limits + requests (Kubernetes)", async () => {
        expect(await run([...compliant(), dockerService("api-gateway", { cpus: undefined, cpuQuota: 50000, cpuPeriod: 100000 })])).toEqual([]);
    });

    it("rejects missing limits", async () => {
        const docker = dockerService("api-gateway", { memory: undefined, cpus: undefined });
        const k8s = deployment("api-gateway", 3001, { container: { resources: { requests: { cpu: "100m" } } } });
        expect((await run([docker, k8s])).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" has no memory limit (memory, in MB)",
            "Container \"api-gateway-container\" has no CPU limit (cpus, or cpuQuota with cpuPeriod)",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" has no resources.limits.memory, resources.limits.cpu, resources.requests.memory",
        ]);
        const cfg = { all: "mandatory" as const, "resource-limits": { requireCpuLimit: false, requireRequests: false } };
        expect((await run([k8s], cfg)).map((v) => v.message.split("; ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" has no resources.limits.memory",
        ]);
    });
});

describe("resource-limits: limits that read as none", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("resource-limits"));

    it("rejects zero quantities with a unit (Kubernetes) or as a decimal (Docker), and unlimited Docker swap", async () => {
        const k8s = deployment("api-gateway", 3001, { container: { resources: { limits: { cpu: "0m", memory: "0Mi" }, requests: { cpu: "0.0", memory: "0Gi" } } } });
        const docker = dockerService("api-gateway", { cpus: "0.0", memorySwap: -1 });
        expect((await run([k8s, docker])).map((v) => v.message.split("; ")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" has no resources.limits.memory, resources.limits.cpu, resources.requests.memory, resources.requests.cpu",
            "Container \"api-gateway-container\" has no CPU limit (cpus, or cpuQuota with cpuPeriod)",
            "Container \"api-gateway-container\" sets memorySwap -1 (unlimited swap), so the memory limit no longer bounds what it takes from the host",
        ]);
    });

    it("passes small non-zero quantities and a bounded swap", async () => {
        const k8s = deployment("api-gateway", 3001, { container: { resources: { limits: { cpu: "0.05", memory: "64Mi" }, requests: { cpu: "10m", memory: "64Mi" } } } });
        expect(await run([k8s, dockerService("api-gateway", { cpus: "0.25", memorySwap: 512 })])).toEqual([]);
    });
});

describe("pids-limit", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("pids-limit"));

    it("passes Docker containers with a positive PID limit; Kubernetes workloads are not its business", async () => {
        expect(await run([...compliant(), dockerPostgres({ pidsLimit: 4096 }), dockerContainer("database-service-migrate", "job", { pidsLimit: 16 })])).toEqual([]);
    });

    it("rejects a container without one, or with one the engine reads as unlimited or that is too high, naming the fix", async () => {
        const rs = [
            dockerService("api-gateway", { pidsLimit: undefined }),
            dockerPostgres({ pidsLimit: 0 }),
            dockerNginx(undefined, { pidsLimit: -1 }),
            dockerPrometheus(),
            dockerContainer("database-service-migrate", "job", { pidsLimit: 1_000_000 }),
        ];
        rs[3].props.pidsLimit = 2.5;
        const vs = await run(rs);
        expect(messages(vs).map((m) => m.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" has no PID limit (pidsLimit)",
            "Container \"postgres-container\" has pidsLimit 0, which is no limit (the engine reads 0 and -1 as unlimited)",
            "Container \"nginx-container\" has pidsLimit -1, which is no limit (the engine reads 0 and -1 as unlimited)",
            "Container \"prometheus-container\" has pidsLimit 2.5, which is no limit (the engine reads 0 and -1 as unlimited)",
            "Container \"database-service-migrate-container\" has pidsLimit 1000000, above the highest accepted 32768",
        ]);
        expect(vs[0].message).toBe(
            "Container \"api-gateway-container\" has no PID limit (pidsLimit); set pidsLimit to a positive integer of at most 32768 sized to the workload " +
            "(the stack's trading:dockerPidsLimitStateless/Stateful/Job; components/runtime/docker-container.ts passes it).",
        );
        expect(vs.every((v) => v.enforcementLevel === "mandatory")).toBe(true);
        expect((await run(rs, "dev")).every((v) => v.enforcementLevel === "advisory")).toBe(true);
        const raised = await run([rs[4]], { all: "mandatory", "pids-limit": { maxPidsLimit: 2_000_000 } });
        expect(raised).toEqual([]);
    });

    it("skips a limit not known during preview", async () => {
        expect(await run([dockerService("api-gateway", { pidsLimit: UNKNOWN })])).toEqual([]);
    });
});

describe("health-checks", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("health-checks"));

    it("passes healthchecks and probes; one-shot jobs and CronJobs are exempt", async () => {
        const job = dockerContainer("database-service-migrate", "job", { healthcheck: undefined, mustRun: false, attach: true, restart: "no" });
        expect(await run([...compliant(), job])).toEqual([]);
    });

    it("rejects missing or disabled checks", async () => {
        const rs = [
            dockerService("api-gateway", { healthcheck: undefined }),
            dockerPostgres({ healthcheck: { tests: ["NONE"] } }),
            deployment("api-gateway", 3001, { container: { readinessProbe: undefined } }),
            statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999, { livenessProbe: undefined, readinessProbe: undefined }),
        ];
        expect((await run(rs)).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" has no healthcheck (healthcheck.tests), so Docker and dependants cannot tell a hung process from a healthy one",
            "Container \"postgres-container\" has no healthcheck (healthcheck.tests), so Docker and dependants cannot tell a hung process from a healthy one",
            "Deployment \"api-gateway-deployment\" container \"api-gateway\" has no readinessProbe",
            "StatefulSet \"postgres-statefulset\" container \"postgres\" has no livenessProbe and no readinessProbe",
        ]);
    });
});

describe("pinned-image-tags", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("pinned-image-tags"));

    it("passes version tags, digests and image IDs", async () => {
        expect(await run([...compliant(), remoteImage("postgres:16.4-bookworm"), remoteImage("localhost:5000/nginx:1.27.2"),
            built("services", { NODE_IMAGE: "node:20.18.0-bookworm-slim" })])).toEqual([]);
    });

    it("rejects latest, tag-less and floating references everywhere", async () => {
        const rs = [
            remoteImage("postgres:latest"),
            remoteImage("localhost:5000/nginx"),
            { type: "docker:index/image:Image", name: "services-image", props: { imageName: "localhost/ai-trading/services:stable" } },
            dockerService("api-gateway", { image: "localhost/ai-trading/services" }),
            deployment("api-gateway", 3001, { container: { image: "registry.example.com/ai-trading/ai-trading-services:latest" } }),
        ];
        expect((await run(rs)).map((v) => v.message.split("; ")[0])).toEqual([
            "RemoteImage \"image-postgres-latest\": name \"postgres:latest\" uses the floating tag \"latest\"",
            "RemoteImage \"image-localhost-5000-nginx\": name \"localhost:5000/nginx\" has no tag (Docker resolves it to \"latest\")",
            "Image \"services-image\": imageName \"localhost/ai-trading/services:stable\" uses the floating tag \"stable\"",
            "Container \"api-gateway-container\": image \"localhost/ai-trading/services\" has no tag (Docker resolves it to \"latest\")",
            "Deployment \"api-gateway-deployment\": container \"api-gateway\" \"registry.example.com/ai-trading/ai-trading-services:latest\" uses the floating tag \"latest\"",
        ]);
    });

    it("parses references", () => {
        expect(parseImageRef("docker.io/library/postgres:16.4@sha256:" + "a".repeat(64))).toMatchObject({ basename: "postgres", tag: "16.4" });
        expect(unpinnedReason("nginx@sha256:abc", ["latest"])).toBe("has a malformed digest \"sha256:abc\"");
        expect(unpinnedReason(UNKNOWN, ["latest"])).toBe("has no tag (Docker resolves it to \"latest\")");
    });

    it("skips images computed during preview", async () => {
        expect(await run([dockerService("api-gateway", { image: UNKNOWN })])).toEqual([]);
    });

    it("checks the base images a build is given (build arguments named *_IMAGE), not its other arguments", async () => {
        expect(await run([built("services-image", { NODE_IMAGE: "node:20.18.0-bookworm-slim", NODE_VERSION: "latest" }),
            built("trainer-image", { SERVICES_IMAGE: `registry.example.com/ai-trading/ai-trading-services@sha256:${"0".repeat(64)}`, SERVICES_IMAGE_ID: "sha256:abc" })])).toEqual([]);
        expect((await run([built("services-image", { NODE_IMAGE: "node:latest", VERSION: "latest" }),
            built("trainer-image", { SERVICES_IMAGE: "localhost/ai-trading/services", base_image: "debian:stable" })])).map((v) => v.message)).toEqual([
            `Image "services-image": build argument NODE_IMAGE "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "trainer-image": build argument SERVICES_IMAGE "localhost/ai-trading/services" has no tag (Docker resolves it to "latest"); ${PIN}`,
            `Image "trainer-image": build argument base_image "debian:stable" uses the floating tag "stable"; ${PIN}`,
        ]);
    });

    it("reads an image from the build arguments named IMAGE or *_IMAGE (this repo's Dockerfiles pull through no other: image-builds.test.ts)", () => {
        expect(["NODE_IMAGE", "SERVICES_IMAGE", "BASE_IMAGE", "IMAGE", "node_image"].every(isImageBuildArg)).toBe(true);
        expect(["SERVICES_IMAGE_ID", "NODE_VERSION", "IMAGES", "MYIMAGE"].some(isImageBuildArg)).toBe(false);
    });

    it("checks the base images of the Dockerfile a build runs that no build argument holds (literal FROMs, ARG defaults), each once", async () => {
        const given = builtFrom("given", LITERAL_BASES, { NODE_IMAGE: "node:20.18.0-bookworm-slim" });
        expect(messages(await run([given]))).toEqual([
            `Image "given": ${given.file} line 7 (FROM \${BASE}) "debian:stable" uses the floating tag "stable"; ${PIN}`,
            `Image "given": ${given.file} line 12 (FROM node:latest) "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "given": ${given.file} line 14 (FROM \${REG}/library/redis:\${TAG:-latest}) "docker.io/library/redis:latest" uses the floating tag "latest"; ${PIN}`,
        ]);
        // The argument left at its default is the Dockerfile's; given, the build argument's (one message, not two).
        const defaults = builtFrom("defaults", LITERAL_BASES, { BASE: "debian:12.7", TAG: "7.4.1" });
        expect(messages(await run([defaults]))).toEqual([
            `Image "defaults": ${defaults.file} line 6 (FROM \${NODE_IMAGE}) "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "defaults": ${defaults.file} line 12 (FROM node:latest) "node:latest" uses the floating tag "latest"; ${PIN}`,
        ]);
        const overridden = builtFrom("overridden", LITERAL_BASES, { NODE_IMAGE: "node:latest" });
        expect(messages(await run([overridden])).filter((m) => m.includes("NODE_IMAGE"))).toEqual([
            `Image "overridden": build argument NODE_IMAGE "node:latest" uses the floating tag "latest"; ${PIN}`,
        ]);
    });

    it("leaves out a Dockerfile's FROMs whose arguments or path are unknown during preview", async () => {
        expect(messages(await run([builtFrom("unknown", "ARG BASE=debian:stable\nFROM ${BASE}\nFROM node:20.18.0", { BASE: UNKNOWN })]))).toEqual([]);
        expect(messages(await run([builtFrom("all-unknown", "FROM node:latest", UNKNOWN)]))).toEqual([]);
        expect(await run([imageBuild("unknown-path", { context: UNKNOWN, dockerfile: UNKNOWN })])).toEqual([]);
        // Not built here (a name only): no Dockerfile to read.
        expect(await run([{ type: "docker:index/image:Image", name: "named", props: { imageName: "localhost/ai-trading/named:0.1.0", skipPush: true } }])).toEqual([]);
    });

    it("refuses a build whose Dockerfile it cannot read (relative, missing), which would otherwise pass unseen", async () => {
        const unseen = (file: string, why: string) =>
            `: its Dockerfile "${file}" cannot be read where the policies run (${why}), so the images it pulls go unchecked; ` +
            "give build.dockerfile (or build.context) as an absolute path to a Dockerfile on the machine running the preview.";
        const gone = builtFrom("gone", "FROM node:latest");
        fs.rmSync(gone.file);
        const RELATIVE = "not an absolute path, and the policies run in the policy pack's directory, not the program's";
        expect(messages(await run([gone, imageBuild("relative", { context: "./app", dockerfile: "app/Dockerfile" }), imageBuild("context-only", { context: "app" }),
            imageBuild("default-context", {}), imageBuild("remote", { context: "https://example.com/repo.git#main" }),
            imageBuild("args-unknown", { context: "app", args: UNKNOWN })]))).toEqual([
            `Image "gone"${unseen(gone.file, "no such file")}`,
            `Image "relative"${unseen("app/Dockerfile", RELATIVE)}`,
            `Image "context-only"${unseen(path.join("app", "Dockerfile"), RELATIVE)}`,
            `Image "default-context"${unseen("Dockerfile", RELATIVE)}`,
            `Image "remote"${unseen("https://example.com/repo.git#main", "it is inside that remote build context, not on this machine")}`,
            `Image "args-unknown"${unseen(path.join("app", "Dockerfile"), RELATIVE)}`,
        ]);
    });

    it("skips build arguments computed during preview", async () => {
        expect(await run([built("trainer-image", { SERVICES_IMAGE: UNKNOWN, SERVICES_IMAGE_ID: UNKNOWN }), built("services-image", UNKNOWN),
            { type: "docker:index/image:Image", name: "other-image", props: { imageName: "localhost/ai-trading/other:1.0", build: UNKNOWN } }])).toEqual([]);
    });
});

describe("allowed-image-registries", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: Parameters<typeof runPack>[1] = "prod") => runPack(rs, cfg, only("allowed-image-registries"));
    const allowing = (...allowedRegistries: string[]) => ({ all: "mandatory" as const, "allowed-image-registries": { allowedRegistries } });
    const PROD_ALLOWED = (loadConfig("prod")["allowed-image-registries"] as { allowedRegistries: string[] }).allowedRegistries;
    const fix = "pull it from one of those (push or mirror the image there), or, once its source is reviewed, add its registry or " +
        "repository to allowedRegistries in the stack's policy config.";
    const EVIL = "ghcr.io/someone/miner:1.0";
    /** The Deployment fixture's pod template under another workload kind (same labels, same pod spec). */
    const retyped = (type: string, name: string, props: (p: any) => Record<string, any>): TestResource => {
        const d = deployment("api-gateway", 3001, { container: { image: EVIL } });
        return { type, name, props: props(d.props) };
    };

    it("passes the stacks' own images: the registry, the pinned upstream ones, image IDs", async () => {
        const kubernetes = compliant().filter((r) => r.type.startsWith("kubernetes:"));
        expect(await run([...kubernetes, remoteImage("postgres:16.4-bookworm"),
            { type: "docker:index/image:Image", name: "services-image", props: { imageName: "registry.example.com/ai-trading/ai-trading-services:0.1.0" } }])).toEqual([]);
        // dev: the local builds (localhost/ai-trading/...) and, with trading:imageSource upstream, the same pinned upstream images.
        const docker = compliant().filter((r) => r.type.startsWith("docker:"));
        expect(await run([...docker, remoteImage("localhost/ai-trading/postgres:15.20-local"), remoteImage("postgres:16.4-bookworm"),
            { type: "docker:index/image:Image", name: "services-image", props: { imageName: "localhost/ai-trading/services:0.1.0" } }], "dev")).toEqual([]);
    });

    it("rejects an image from elsewhere in every kind of workload and image resource, naming the image, its repository and the allowed list", async () => {
        const rs: TestResource[] = [
            deployment("api-gateway", 3001, {
                container: { image: EVIL },
                spec: { initContainers: [{ ...container("migrate", 0), image: "quay.io/someone/migrate:2" }] },
            }),
            statefulSet("postgres", "datastore", "bitnami/postgresql:16.4.0", 5432, 999),
            retyped("kubernetes:apps/v1:DaemonSet", "api-gateway-daemonset", (p) => ({ ...p, kind: "DaemonSet" })),
            retyped("kubernetes:apps/v1:ReplicaSet", "api-gateway-replicaset", (p) => ({ ...p, kind: "ReplicaSet" })),
            retyped("kubernetes:batch/v1:Job", "api-gateway-job", (p) => ({ ...p, kind: "Job", spec: { template: p.spec.template } })),
            backupCronJob("postgres", "evil.example.com/pg_dump:16", 999),
            retyped("kubernetes:core/v1:Pod", "api-gateway-pod", (p) => ({ apiVersion: "v1", kind: "Pod", metadata: p.metadata, spec: p.spec.template.spec })),
            dockerService("api-gateway", { image: "ai-trading/services:0.1.0" }),
            remoteImage("httpd:2.4.62-bookworm"),
            { type: "docker:index/image:Image", name: "services-image", props: { imageName: "registry.example.com/other/services:0.1.0" } },
        ];
        const allowed = `(allowedRegistries: ${PROD_ALLOWED.join(", ")}): ${fix}`;
        expect(PROD_ALLOWED).toContain("registry.example.com/ai-trading");
        expect(messages(await run(rs))).toEqual([
            `Deployment "api-gateway-deployment" init container "migrate" image "quay.io/someone/migrate:2" (quay.io/someone/migrate) is not from an allowed registry ${allowed}`,
            `Deployment "api-gateway-deployment" container "api-gateway" image "${EVIL}" (ghcr.io/someone/miner) is not from an allowed registry ${allowed}`,
            `StatefulSet "postgres-statefulset" container "postgres" image "bitnami/postgresql:16.4.0" (docker.io/bitnami/postgresql) is not from an allowed registry ${allowed}`,
            `DaemonSet "api-gateway-daemonset" container "api-gateway" image "${EVIL}" (ghcr.io/someone/miner) is not from an allowed registry ${allowed}`,
            `ReplicaSet "api-gateway-replicaset" container "api-gateway" image "${EVIL}" (ghcr.io/someone/miner) is not from an allowed registry ${allowed}`,
            `Job "api-gateway-job" container "api-gateway" image "${EVIL}" (ghcr.io/someone/miner) is not from an allowed registry ${allowed}`,
            `CronJob "postgres-backup-cronjob" container "postgres-backup" image "evil.example.com/pg_dump:16" (evil.example.com/pg_dump) is not from an allowed registry ${allowed}`,
            `Pod "api-gateway-pod" container "api-gateway" image "${EVIL}" (ghcr.io/someone/miner) is not from an allowed registry ${allowed}`,
            // On prod an unqualified local name is a Docker Hub repository: whoever owns that namespace there.
            `Container "api-gateway-container" image "ai-trading/services:0.1.0" (docker.io/ai-trading/services) is not from an allowed registry ${allowed}`,
            `RemoteImage "image-httpd-2-4-62-bookworm" name "httpd:2.4.62-bookworm" (docker.io/library/httpd) is not from an allowed registry ${allowed}`,
            `Image "services-image" imageName "registry.example.com/other/services:0.1.0" (registry.example.com/other/services) is not from an allowed registry ${allowed}`,
        ]);
        expect((await run(rs)).every((v) => v.enforcementLevel === "mandatory")).toBe(true);
        expect((await run(rs, "dev")).every((v) => v.enforcementLevel === "advisory")).toBe(true);
    });

    it("checks the images a pod's image volumes pull too (pinned-image-tags alike)", async () => {
        const d = deployment("api-gateway", 3001, { spec: { volumes: [{ name: "tools", image: { reference: "evil.example.net/tools:latest" } }] } });
        expect((await run([d])).map((v) => v.message.split(" is not")[0])).toEqual([
            "Deployment \"api-gateway-deployment\" image volume \"tools\" \"evil.example.net/tools:latest\" (evil.example.net/tools)",
        ]);
        expect((await runPack([d], "prod", only("pinned-image-tags"))).map((v) => v.message.split(";")[0])).toEqual([
            "Deployment \"api-gateway-deployment\": image volume \"tools\" \"evil.example.net/tools:latest\" uses the floating tag \"latest\"",
        ]);
    });

    it("matches prefixes on whole path segments", async () => {
        const at = (image: string) => deployment("api-gateway", 3001, { container: { image } });
        const cfg = allowing("registry.example.com/ai", "localhost:5000/");
        expect(await run([at("registry.example.com/ai/services:1.0"), at("registry.example.com/ai:1.0"), at("localhost:5000/nginx:1.27.2")], cfg)).toEqual([]);
        expect((await run([at("registry.example.com/ai-evil/x:1.0"), at("registry.example.com/aix:1.0"), at("localhost:50000/nginx:1.27.2")], cfg))
            .map((v) => v.message.split(" is not")[0])).toEqual([
            `Deployment "api-gateway-deployment" container "api-gateway" image "registry.example.com/ai-evil/x:1.0" (registry.example.com/ai-evil/x)`,
            `Deployment "api-gateway-deployment" container "api-gateway" image "registry.example.com/aix:1.0" (registry.example.com/aix)`,
            `Deployment "api-gateway-deployment" container "api-gateway" image "localhost:50000/nginx:1.27.2" (localhost:50000/nginx)`,
        ]);
    });

    it("resolves names without a registry host to Docker Hub, as the engine does", async () => {
        expect(qualifiedRepository("postgres:16.4-bookworm")).toBe("docker.io/library/postgres");
        expect(qualifiedRepository("postgres")).toBe("docker.io/library/postgres");
        expect(qualifiedRepository("grafana/grafana:11.2.2")).toBe("docker.io/grafana/grafana");
        expect(qualifiedRepository("docker.io/postgres:16.4")).toBe("docker.io/library/postgres");
        expect(qualifiedRepository("index.docker.io/library/postgres:16.4")).toBe("docker.io/library/postgres");
        expect(qualifiedRepository("ai-trading/services:0.1.0")).toBe("docker.io/ai-trading/services");
        // The local builds' names: "localhost" is a registry host, so the engine never looks for them on Docker Hub.
        expect(qualifiedRepository("localhost/ai-trading/services:0.1.0")).toBe("localhost/ai-trading/services");
        expect(qualifiedRepository("a/b/c:1")).toBe("docker.io/a/b/c");
        expect(qualifiedRepository("localhost/nginx:1")).toBe("localhost/nginx");
        expect(qualifiedRepository("localhost:5000/nginx")).toBe("localhost:5000/nginx");
        expect(qualifiedRepository("Registry/nginx:1")).toBe("Registry/nginx");
        expect(qualifiedRepository(`registry.example.com:5000/ai-trading/services:0.1.0@sha256:${"a".repeat(64)}`)).toBe("registry.example.com:5000/ai-trading/services");
        expect(qualifiedRepository(`sha256:${"a".repeat(64)}`)).toBeUndefined();
        expect(isUnderPrefix("docker.io/library/postgres", "docker.io/library")).toBe(true);
        expect(isUnderPrefix("docker.io/libraryx/postgres", "docker.io/library")).toBe(false);
        expect(isUnderPrefix("docker.io/library/postgres", "")).toBe(false);
        // In the policy: an official image is allowed by its docker.io/library/ repository, a namesake elsewhere on the Hub is not.
        const cfg = allowing("docker.io/library/postgres");
        expect(await run([remoteImage("postgres:16.4-bookworm"), remoteImage("docker.io/library/postgres:16.4"), remoteImage("index.docker.io/postgres:16.4")], cfg)).toEqual([]);
        expect((await run([remoteImage("someone/postgres:16.4"), remoteImage("postgresql:16.4")], cfg)).map((v) => v.message.split(" is not")[0])).toEqual([
            `RemoteImage "image-someone-postgres-16-4" name "someone/postgres:16.4" (docker.io/someone/postgres)`,
            `RemoteImage "image-postgresql-16-4" name "postgresql:16.4" (docker.io/library/postgresql)`,
        ]);
    });

    it("allows a bare image ID (content-pinned, already on the engine), not a name that merely starts with sha256", async () => {
        const id = `sha256:${"1".repeat(64)}`;
        const cfg = allowing("registry.example.com/ai-trading");
        expect(await run([dockerService("api-gateway", { image: id }), deployment("api-gateway", 3001, { container: { image: id } })], cfg)).toEqual([]);
        expect(disallowedRepository(id, ["registry.example.com/ai-trading"])).toBeUndefined();
        expect(disallowedRepository("sha256:abc", ["registry.example.com/ai-trading"])).toBe("docker.io/library/sha256");
    });

    it("checks the base images a build is given (build arguments named *_IMAGE) against each stack's list", async () => {
        // prod builds the services image FROM the pinned upstream node image; dev FROM the local node build or, with
        // trading:imageSource upstream, the upstream one; local-k8s FROM the local build only.
        const REGISTRY = "registry.example.com/ai-trading";
        const upstreamNode = built("services-image", { NODE_IMAGE: "node:20.18.0-bookworm-slim" });
        const localNode = built("services-image", { NODE_IMAGE: "localhost/ai-trading/node:20.20.2-local" });
        expect(await run([built("services-image", { NODE_IMAGE: "node:20.18.0-bookworm-slim" }, REGISTRY),
            built("trainer-image", { SERVICES_IMAGE: `${REGISTRY}/ai-trading-services@sha256:${"0".repeat(64)}` }, REGISTRY)])).toEqual([]);
        expect(await run([upstreamNode], "dev")).toEqual([]);
        expect(await run([localNode, built("trainer-image", { SERVICES_IMAGE: "localhost/ai-trading/services:0.1.0", SERVICES_IMAGE_ID: "sha256:abc" })], "dev")).toEqual([]);
        expect(await run([localNode], "local-k8s")).toEqual([]);
        expect(messages(await run([upstreamNode], "local-k8s"))).toEqual([
            `Image "services-image" build argument NODE_IMAGE "node:20.18.0-bookworm-slim" (docker.io/library/node) is not from an allowed registry ` +
            `(allowedRegistries: localhost/ai-trading): ${fix}`,
        ]);
        const allowed = `(allowedRegistries: ${PROD_ALLOWED.join(", ")}): ${fix}`;
        expect(messages(await run([built("services-image", { NODE_IMAGE: "ghcr.io/x/node:20", NODE_VERSION: "ghcr.io/x/node:20" }, REGISTRY),
            built("local-services-image", { NODE_IMAGE: "localhost/ai-trading/node:20.20.2-local" }, REGISTRY)]))).toEqual([
            `Image "services-image" build argument NODE_IMAGE "ghcr.io/x/node:20" (ghcr.io/x/node) is not from an allowed registry ${allowed}`,
            `Image "local-services-image" build argument NODE_IMAGE "localhost/ai-trading/node:20.20.2-local" (localhost/ai-trading/node) is not from an allowed registry ${allowed}`,
        ]);
        expect(await run([built("services-image", { NODE_IMAGE: UNKNOWN }, REGISTRY), built("trainer-image", UNKNOWN, REGISTRY)])).toEqual([]);
    });

    it("checks the base images of the Dockerfile a build runs that no build argument holds", async () => {
        const image = builtFrom("base", "ARG BASE=ghcr.io/x/debian:12\nFROM ${BASE} AS base\nFROM base\nFROM node:20.18.0-bookworm-slim\nFROM quay.io/y/z:1.0");
        expect(messages(await run([image])).filter((m) => !m.includes("imageName"))).toEqual([
            `Image "base" ${image.file} line 2 (FROM \${BASE}) "ghcr.io/x/debian:12" (ghcr.io/x/debian) is not from an allowed registry (allowedRegistries: ${PROD_ALLOWED.join(", ")}): ${fix}`,
            `Image "base" ${image.file} line 5 (FROM quay.io/y/z:1.0) "quay.io/y/z:1.0" (quay.io/y/z) is not from an allowed registry (allowedRegistries: ${PROD_ALLOWED.join(", ")}): ${fix}`,
        ]);
    });

    it("reports nothing when no registry is configured, and skips images unknown during preview", async () => {
        const rs = [deployment("api-gateway", 3001, { container: { image: EVIL } }), dockerService("api-gateway", { image: EVIL }), remoteImage(EVIL)];
        expect(await run(rs, { all: "mandatory" })).toEqual([]);
        expect(await run(rs, allowing())).toEqual([]);
        expect(await run(rs, allowing(""))).toEqual([]);
        expect(await run([dockerService("api-gateway", { image: UNKNOWN }), deployment("api-gateway", 3001, { container: { image: UNKNOWN } })])).toEqual([]);
    });
});

describe("required-workload-labels", () => {
    const run = (rs: Parameters<typeof runPack>[0]) => runPack(rs, "prod", only("required-workload-labels"));

    it("passes labelled workloads", async () => {
        expect(await run(compliant())).toEqual([]);
    });

    it("rejects missing, unknown or inconsistent labels", async () => {
        const rs = [
            dockerService("api-gateway", { labels: [{ label: "trading.io/role", value: "frontend" }] }),
            dockerPostgres({ labels: [{ label: "trading.io/workload", value: "postgres" }, { label: "trading.io/role", value: "service" }] }),
            edit(deployment("api-gateway", 3001), (p) => { p.spec.template.metadata.labels = { "trading.io/workload": "api-gateway" }; }),
        ];
        expect((await run(rs)).map((v) => v.message.split("; ")[0])).toEqual([
            "Container \"api-gateway-container\" has no trading.io/workload label",
            "Container \"api-gateway-container\" has trading.io/role=frontend, not one of datastore, service, job, monitoring, edge",
            "Container \"postgres-container\" labels the datastore postgres as role service",
            "Deployment \"api-gateway-deployment\" pod template has no trading.io/role label",
        ]);
    });
});
