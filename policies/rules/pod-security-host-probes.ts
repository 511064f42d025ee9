import { ResourceValidationPolicy } from "@pulumi/policy";
import { PSS_CONTROLS } from "../lib/pss";
import { Workload, workloadRule } from "../lib/rule";
import { isRecord, str } from "../lib/values";

/** The handlers a container may give a host: its three probes and its two lifecycle hooks. */
const PROBES = ["livenessProbe", "readinessProbe", "startupProbe"] as const;
const HOOKS = ["postStart", "preStop"] as const;

/**
 * Session 62. PSS baseline "Host Probes / Lifecycle Hooks" (Kubernetes 1.34, KEP-4940): an `httpGet` or
 * `tcpSocket` handler of a probe or lifecycle hook may not name a `host`. The kubelet makes that request
 * itself, from the node's network namespace, so a host given there is a request from the node to any
 * address the pod's author picks: the cloud metadata service (the node's credentials), the kubelet's
 * own ports on 127.0.0.1, the API server, another tenant's pod; past every NetworkPolicy, which the node
 * is not subject to. Without a host the kubelet calls the pod's own address, which is what a probe is
 * for. Admission allows only "" or no value; so does this, `localhost` included (from the kubelet it is
 * the node, not the pod). A host unknown during preview is judged at `up`.
 */
export function hostHandlers(w: Workload): string[] {
    const out: string[] = [];
    for (const c of w.containers) {
        const where = `${c.init ? "init container" : "container"} "${c.name}"`;
        const judge = (field: string, handler: unknown) => {
            if (!isRecord(handler)) return;
            for (const action of ["httpGet", "tcpSocket"] as const) {
                const host = isRecord(handler[action]) ? str(handler[action].host) : undefined;
                if (host !== undefined && host !== "") out.push(`${where} ${field}.${action}.host is "${host}"`);
            }
        };
        for (const p of PROBES) judge(p, c.container[p]);
        const lifecycle = c.container.lifecycle;
        if (isRecord(lifecycle)) for (const h of HOOKS) judge(`lifecycle.${h}`, lifecycle[h]);
    }
    return out;
}

export const podSecurityHostProbes: ResourceValidationPolicy = {
    name: "pod-security-host-probes",
    description:
        "Pod Security Standards baseline (Kubernetes 1.34+), host probes and lifecycle hooks: no httpGet or tcpSocket handler of a " +
        "liveness, readiness or startup probe or a postStart/preStop hook names a host (the kubelet makes that request from the node).",
    severity: "high",
    validateResource: workloadRule({}, hostHandlers, (w, p) =>
        `${w.label} ${p} (PSS baseline "${PSS_CONTROLS.hostProbes}"): the kubelet sends that request from the node's network, past every ` +
        "NetworkPolicy, to whatever the host names (the cloud metadata service, the kubelet's own ports, the API server); remove host so the " +
        "kubelet calls the pod's own address, and probe other services from inside the container (an exec probe).",
        ["kubernetes"]),
};
