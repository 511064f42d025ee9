import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { isUnknown, str } from "../lib/values";
import { describe, isK8sWorkload, K8S } from "../lib/workloads";

/**
 * Session 63b. protected-namespaces holds a declared Namespace's Pod Security labels to restricted (enforce, warn, audit, at
 * the latest version); a workload put in a namespace the stack does not declare (one made by hand, by another stack, or by
 * nobody yet: the provider fails, or someone makes it later) runs under whatever labels that namespace has, privileged
 * unless the API server's configuration says otherwise, for every pod a controller or a user makes there at run time.
 * Every Kubernetes workload goes into a Namespace the stack declares. A namespace, or a declared Namespace's name, unknown
 * during preview is judged at `up`; `default` and `kube-*` are protected-namespaces' refusal too.
 */
export function workloadsOutsideDeclaredNamespaces(resources: StackResource[]): Finding[] {
    const namespaces = resources.filter((r) => r.type === K8S.namespace).map((r) => r.props.metadata?.name);
    if (namespaces.some((n) => isUnknown(n))) return [];
    const declared = new Set(namespaces.map((n) => str(n)).filter((n): n is string => n !== undefined));
    const out: Finding[] = [];
    for (const w of resources.filter((r) => isK8sWorkload(r.type))) {
        const raw = w.props.metadata?.namespace;
        if (isUnknown(raw)) continue;
        const ns = str(raw) ?? "default";
        if (declared.has(ns)) continue;
        out.push({
            urn: w.urn,
            message: `${describe(w.type, w.name)} runs in the namespace "${ns}", which the stack does not declare: its pods, and every pod made there at run time, ` +
                "are admitted under Pod Security labels the pack never read (privileged unless the API server's configuration sets another level); " +
                "declare the Namespace in the program (protected-namespaces then holds it to restricted), or put the workload in one it declares.",
        });
    }
    return out;
}

export const workloadsInDeclaredNamespaces: StackValidationPolicy = {
    name: "workloads-in-declared-namespaces",
    description:
        "Every Kubernetes workload runs in a Namespace the program declares, whose Pod Security labels protected-namespaces judges; a namespace " +
        "made elsewhere admits its pods under labels the pack never read (session 63b).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => isK8sWorkload(r.type))) args.notApplicable("no Kubernetes workloads");
        for (const f of workloadsOutsideDeclaredNamespaces(resources)) reportViolation(f.message, f.urn);
    },
};
