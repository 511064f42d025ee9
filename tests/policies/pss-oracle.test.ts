/**
 * Oracle: the pack against the real kube-apiserver's Pod Security admission. A generated corpus of
 * Pod specs (pss-corpus.ts: valid ones and single-control violations) is judged by the pack's Pod
 * Security policies and by a server-side dry run in a namespace enforcing `restricted`:
 * - for every spec the apiserver rejects, the pack reports a violation of the same control;
 * - no spec the pack accepts is rejected by the apiserver.
 * Runs where the cluster tools are built (scripts/cluster/build.sh): uses the local cluster when it
 * runs (a namespace of its own, deleted afterwards), or starts a private control plane
 * (K8S_INSTANCE, start.sh --control-plane-only: its own directory and free loopback ports) and
 * stops and removes it afterwards, so it never stops a cluster someone else started. Skipped,
 * saying why, where the binaries are missing.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cluster, clusterReady, root, run } from "../e2e-k8s/kube";
import { freePort } from "../harness/proc";
import { podSecurityCorpus } from "./pss-corpus";
import { loadConfig, runPack, Violation } from "./run-pack";

/** Admission's control name -> the pack policy that covers it and how its message names it. */
const CONTROLS: Record<string, { policy: string; names: RegExp }> = {
    "host namespaces": { policy: "no-privileged-containers", names: /host(Network|PID|IPC): true/ },
    "privileged": { policy: "no-privileged-containers", names: /runs privileged/ },
    "non-default capabilities": { policy: "drop-all-capabilities", names: /adds capabilities/ },
    "unrestricted capabilities": { policy: "drop-all-capabilities", names: /does not drop ALL capabilities|adds capabilities/ },
    "hostPath volumes": { policy: "no-privileged-containers", names: /hostPath volume|host path|runtime socket/ },
    "hostPort": { policy: "no-public-exposure", names: /hostPort/ },
    "forbidden AppArmor profile": { policy: "pod-security-apparmor", names: /forbidden AppArmor profile/ },
    "seLinuxOptions": { policy: "pod-security-selinux", names: /seLinuxOptions/ },
    "procMount": { policy: "pod-security-proc-mount", names: /procMount/ },
    "forbidden sysctls": { policy: "pod-security-sysctls", names: /forbidden sysctls/ },
    "restricted volume types": { policy: "pod-security-volume-types", names: /restricted volume types/ },
    "allowPrivilegeEscalation != false": { policy: "no-privilege-escalation", names: /allowPrivilegeEscalation: false/ },
    "runAsNonRoot != true": { policy: "run-as-non-root", names: /runAsNonRoot/ },
    "runAsUser=0": { policy: "run-as-non-root", names: /runAsUser: 0/ },
    "seccompProfile": { policy: "no-privilege-escalation", names: /seccompProfile/ },
    "hostProcess": { policy: "no-privileged-containers", names: /hostProcess/ },
    "probe or lifecycle host": { policy: "pod-security-host-probes", names: /\.host is "/ },
};
const PSS_POLICIES = [...new Set(Object.values(CONTROLS).map((c) => c.policy))];
/**
 * prod.json, with the corpus's Localhost profiles listed as reviewed: admission accepts any Localhost
 * profile, the pack (session 44) only one the operator has reviewed on the nodes.
 */
const PROD = {
    ...loadConfig("prod"),
    "no-privilege-escalation": { reviewedSeccompProfiles: ["profiles/trading.json"] },
    "pod-security-apparmor": { reviewedAppArmorProfiles: ["trading"] },
};

// A running apiserver needs only kubectl; starting the control plane needs what start.sh needs.
const kubectlBin = path.join(cluster.K8S_BIN, "kubectl");
const etcdDir = fs.existsSync(path.join(cluster.K8S_CACHE, "bin")) ? fs.readdirSync(path.join(cluster.K8S_CACHE, "bin")).find((d) => d.startsWith("etcd-")) : undefined;
const controlPlane = [kubectlBin, ...["kube-apiserver", "kube-controller-manager", "kube-scheduler"].map((b) => path.join(cluster.K8S_BIN, b)),
    etcdDir ? path.join(cluster.K8S_CACHE, "bin", etcdDir, "etcd") : path.join(cluster.K8S_CACHE, "bin", "etcd-<version>", "etcd")];
const running = fs.existsSync(kubectlBin) && clusterReady();
const built = running || controlPlane.every((b) => fs.existsSync(b));
if (!built) {
    console.warn(`pss-oracle: SKIPPED, no apiserver answers and the cluster tools are not built (missing: ${controlPlane.filter((b) => !fs.existsSync(b)).join(", ")}; run bash scripts/cluster/build.sh --control-plane)`);
}

/** The admission controls named in a `violates PodSecurity "restricted:latest": a (..), b (..)` message. */
export function admissionControls(message: string): string[] {
    const m = /violates PodSecurity "[^"]+": (.*)$/s.exec(message);
    if (!m) return [];
    const out: string[] = [];
    let depth = 0;
    let current = "";
    for (const ch of m[1]) {
        if (ch === "(") depth++;
        if (ch === ")") depth--;
        if (ch === "," && depth === 0) {
            out.push(current);
            current = "";
        } else current += ch;
    }
    out.push(current);
    return out.map((s) => s.trim().replace(/\s*\(.*$/s, "")).map((s) => (s.startsWith("forbidden AppArmor profile") ? "forbidden AppArmor profile" : s)).filter(Boolean);
}

/**
 * The env of a private control plane: its name and six free ports (scripts/cluster/lib.sh), from the
 * harness (below the kernel's ephemeral range: a port from listen(0) can be taken by an outgoing
 * connection before etcd binds it, likeliest beside a running cluster).
 */
async function privateInstance(): Promise<NodeJS.ProcessEnv> {
    const names = ["K8S_APISERVER_PORT", "K8S_ETCD_PORT", "K8S_ETCD_PEER_PORT", "K8S_ETCD_METRICS_PORT", "K8S_CONTROLLER_MANAGER_PORT", "K8S_SCHEDULER_PORT"];
    const env: NodeJS.ProcessEnv = { ...process.env, K8S_INSTANCE: `pss-oracle-${process.pid}` };
    for (const n of names) env[n] = String(await freePort());
    return env;
}

describe.skipIf(!built)("Pod Security oracle: the pack against the real apiserver (restricted, server-side dry run)", () => {
    const namespace = `pss-oracle-${crypto.randomBytes(3).toString("hex")}`;
    const corpus = podSecurityCorpus(namespace);
    let instanceEnv: NodeJS.ProcessEnv | undefined;
    let kubeconfig = cluster.KUBECONFIG_PATH;
    const kubectl = (args: string[], opts: { allowFailure?: boolean; timeoutMs?: number; input?: string } = {}) =>
        run(kubectlBin, ["--kubeconfig", kubeconfig, ...args], opts);
    const verdicts = new Map<string, { rejected: boolean; controls: string[]; message: string }>();

    beforeAll(async () => {
        if (!clusterReady()) {
            instanceEnv = await privateInstance();
            const started = await run("bash", [path.join(root, "scripts/cluster/start.sh"), "--control-plane-only"], { timeoutMs: 600_000, env: instanceEnv, allowFailure: true });
            if (started.status !== 0) throw new Error(`private control plane ${instanceEnv.K8S_INSTANCE}: ${started.stderr.slice(-3000)}`);
            kubeconfig = path.join(cluster.K8S_CACHE, "instances", instanceEnv.K8S_INSTANCE!, "pki", "admin.kubeconfig");
        }
        await kubectl(["apply", "-f", "-"], {
            input: JSON.stringify({
                apiVersion: "v1", kind: "Namespace",
                metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" } },
            }),
        });
        // Pod admission needs the namespace's default ServiceAccount (the controller-manager creates it).
        for (let i = 0; i < 60 && (await kubectl(["-n", namespace, "get", "serviceaccount", "default"], { allowFailure: true })).status !== 0; i++) {
            await new Promise((r) => setTimeout(r, 1000));
        }
        await kubectl(["-n", namespace, "create", "serviceaccount", "default"], { allowFailure: true });
        const result = await kubectl(["create", "--dry-run=server", "-f", "-"], {
            input: JSON.stringify({ apiVersion: "v1", kind: "List", items: corpus.map((c) => c.pod) }), allowFailure: true, timeoutMs: 300_000,
        });
        for (const line of result.stdout.split("\n")) {
            const ok = /^pod\/(\S+) created/.exec(line);
            if (ok) verdicts.set(ok[1], { rejected: false, controls: [], message: line });
        }
        for (const line of result.stderr.split("\n")) {
            const bad = /pods "([^"]+)" is forbidden: (.*)$/.exec(line) ?? /Pod "([^"]+)" is invalid: (.*)$/.exec(line);
            if (bad) verdicts.set(bad[1], { rejected: true, controls: admissionControls(bad[2]), message: bad[2] });
        }
        const missing = corpus.filter((c) => !verdicts.has(c.name)).map((c) => c.name);
        if (missing.length) throw new Error(`no apiserver verdict for ${missing.join(", ")}:\n${result.stdout}\n${result.stderr}`);
    }, 900_000);

    afterAll(async () => {
        if (instanceEnv) await run("bash", [path.join(root, "scripts/cluster/stop.sh")], { env: instanceEnv, allowFailure: true, timeoutMs: 300_000 });
        else await kubectl(["delete", "namespace", namespace, "--wait=false"], { allowFailure: true });
    }, 400_000);

    async function packVerdict(name: string): Promise<Violation[]> {
        const c = corpus.find((x) => x.name === name)!;
        return runPack([{ type: "kubernetes:core/v1:Pod", name, props: c.pod }], PROD, { only: PSS_POLICIES });
    }

    it("the corpus has at least 50 specs, valid ones and violations of every control", () => {
        expect(corpus.length).toBeGreaterThanOrEqual(50);
        expect(corpus.filter((c) => c.intent === "valid").length).toBeGreaterThanOrEqual(15);
        const intents = new Set(corpus.map((c) => c.intent));
        // Under restricted, admission reports the restricted checks that replace "non-default capabilities"
        // and "hostPath volumes"; HostProcess pods need a Windows node's API fields (not in the corpus).
        const replaced = ["non-default capabilities", "hostPath volumes", "hostProcess"];
        for (const control of Object.keys(CONTROLS).filter((k) => !replaced.includes(k))) expect(intents, control).toContain(control);
    });

    it("every spec the apiserver rejects: the pack reports a violation of each control admission names", async () => {
        const misses: string[] = [];
        let rejected = 0;
        for (const c of corpus) {
            const v = verdicts.get(c.name)!;
            if (!v.rejected) continue;
            rejected++;
            if (v.controls.length === 0) misses.push(`${c.name}: rejected, but not by Pod Security: ${v.message}`);
            const pack = await packVerdict(c.name);
            for (const control of v.controls) {
                const want = CONTROLS[control];
                if (!want) misses.push(`${c.name}: admission names a control the oracle does not know: "${control}"`);
                else if (!pack.some((p) => p.policyName === want.policy && want.names.test(p.message))) {
                    misses.push(`${c.name}: admission says "${control}" (${v.message}); the pack says ${JSON.stringify(pack.map((p) => `${p.policyName}: ${p.message}`))}`);
                }
            }
        }
        expect(misses).toEqual([]);
        expect(rejected).toBeGreaterThanOrEqual(30);
    }, 300_000);

    it("no spec the pack accepts is rejected by the apiserver (and the valid ones pass both)", async () => {
        const wrong: string[] = [];
        for (const c of corpus) {
            const pack = await packVerdict(c.name);
            const v = verdicts.get(c.name)!;
            if (pack.length === 0 && v.rejected) wrong.push(`${c.name}: the pack accepts it, the apiserver rejects it: ${v.message}`);
            if (c.intent === "valid" && (pack.length > 0 || v.rejected)) {
                wrong.push(`${c.name} (valid): pack ${JSON.stringify(pack.map((p) => p.message))}, apiserver ${v.rejected ? v.message : "accepts"}`);
            }
        }
        expect(wrong).toEqual([]);
    }, 300_000);

    it("the apiserver agrees with the corpus's intent (each violation is rejected for the control it breaks)", () => {
        const disagreements = corpus
            .filter((c) => c.intent !== "valid")
            .map((c) => ({ c, v: verdicts.get(c.name)! }))
            .filter(({ c, v }) => !v.rejected || !v.controls.includes(c.intent))
            .map(({ c, v }) => `${c.name} (intent "${c.intent}"): ${v.rejected ? v.controls.join(", ") : "accepted"}`);
        expect(disagreements).toEqual([]);
    });
});

describe("reading admission's verdict", () => {
    it("lists the controls of a `violates PodSecurity` message (details may hold commas)", () => {
        const message = "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set " +
            "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers \"init\", \"app\" must set " +
            "securityContext.capabilities.drop=[\"ALL\"]), forbidden AppArmor profiles (container \"app\"=unconfined), " +
            "forbidden sysctls (kernel.msgmax, kernel.sem), seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";
        expect(admissionControls(message)).toEqual([
            "allowPrivilegeEscalation != false", "unrestricted capabilities", "forbidden AppArmor profile", "forbidden sysctls", "seccompProfile",
        ]);
        expect(admissionControls("Pod \"x\" is invalid: spec.containers[0].image: Required value")).toEqual([]);
    });
});

describe("the pack on the corpus, without a cluster", () => {
    it("reports the intended control for every violation and nothing for the valid specs", async () => {
        const wrong: string[] = [];
        for (const c of podSecurityCorpus("pss-oracle")) {
            const pack = await runPack([{ type: "kubernetes:core/v1:Pod", name: c.name, props: c.pod }], PROD, { only: PSS_POLICIES });
            if (c.intent === "valid") {
                if (pack.length) wrong.push(`${c.name}: valid, but ${JSON.stringify(pack.map((p) => p.message))}`);
                continue;
            }
            const want = CONTROLS[c.intent];
            if (!pack.some((p) => p.policyName === want.policy && want.names.test(p.message))) {
                wrong.push(`${c.name}: intent "${c.intent}", pack ${JSON.stringify(pack.map((p) => `${p.policyName}: ${p.message}`))}`);
            }
        }
        expect(wrong).toEqual([]);
    });
});
