import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { catalog } from "../../catalog/services";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { DATASTORES, K8S, metadataLabels, MONITORING, namespaceOf, objectName } from "../lib/workloads";

/**
 * Session 44. Each workload of the platform takes its credentials from its own Secret
 * (`<workload>-credentials`, labelled with its `trading.io/workload`; components/runtime/kubernetes/secrets.ts):
 * a service holds its database URL, never the datastore's own password. Nothing judged which Secret a
 * workload reads, so a service taking `postgres-credentials` with `envFrom` (every key: the
 * superuser's password) or a `secretKeyRef`, or mounting it, passed every policy. A Secret the stack
 * declares for another workload (by its `trading.io/workload` label) is refused wherever a pod reads
 * it: `env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, a `secret` volume or a projected volume's
 * `secret` source. A name unknown during preview is judged at `up`.
 *
 * Session 45: a Secret the stack declares without that label escaped (no owner to compare), read by one
 * workload or by every one of them; and a Secret the stack does not declare named as another platform
 * workload's (`postgres-credentials`, made by hand in the cluster) passed as well. Every Secret the
 * stack declares that a workload reads must carry the label of the one workload it belongs to (the
 * platform labels each), and none named `<another workload>-credentials` is read, declared or not.
 */

interface SecretUse { field: string; secret: string }

/** The Secrets a pod template reads, each with the field that reads it. */
export function secretUses(w: Workload): SecretUse[] {
    if (!w.pod) return [];
    const out: SecretUse[] = [];
    const add = (field: string, name: unknown) => {
        const secret = str(name);
        if (secret !== undefined && secret !== "") out.push({ field, secret });
    };
    for (const c of w.containers) {
        const where = `${c.init ? "init container" : "container"} "${c.name}"`;
        arr(c.container.env).forEach((e, i) => {
            if (isRecord(e)) add(`${where} env[${i}] (${str(e.name) ?? "?"}) secretKeyRef`, e.valueFrom?.secretKeyRef?.name);
        });
        arr(c.container.envFrom).forEach((e, i) => {
            if (isRecord(e)) add(`${where} envFrom[${i}].secretRef (every key)`, e.secretRef?.name);
        });
    }
    arr(w.pod.spec.volumes).forEach((v, i) => {
        if (!isRecord(v)) return;
        add(`volume "${str(v.name) ?? i}" (secret)`, v.secret?.secretName);
        arr(v.projected?.sources).forEach((s, j) => {
            if (isRecord(s)) add(`volume "${str(v.name) ?? i}" projected sources[${j}].secret`, s.secret?.name);
        });
    });
    return out;
}

/** The platform's workloads by name, whose Secrets the platform names `<workload>-credentials`. */
const PLATFORM_WORKLOADS: ReadonlySet<string> = new Set([...catalog.map((s) => s.name), ...DATASTORES, ...MONITORING]);

/**
 * Whose a Secret is: its `trading.io/workload` label; for one the stack does not declare, the platform
 * workload its `<workload>-credentials` name says. `null`: declared without the label (or with an empty
 * one); undefined: not to be judged (undeclared under another name, or the label unknown during preview).
 */
function ownerOf(secret: StackResource | undefined, name: string): string | null | undefined {
    if (!secret) {
        const named = /^(.+)-credentials$/.exec(name)?.[1];
        return named !== undefined && PLATFORM_WORKLOADS.has(named) ? named : undefined;
    }
    const labels = secret.props.metadata?.labels;
    if (isUnknown(labels) || (isRecord(labels) && isUnknown(labels[LABEL_WORKLOAD]))) return undefined;
    const owner = metadataLabels(secret.props)[LABEL_WORKLOAD]?.trim();
    return owner ? owner : null;
}

/** Each use of another workload's Secret, or of an unlabelled one, by a Kubernetes workload of the stack. */
export function foreignSecretUses(workloads: Array<{ workload: Workload; urn: string }>, resources: StackResource[]): Array<{ urn: string; message: string }> {
    const secrets = resources.filter((r) => r.type === K8S.secret);
    const declared = (name: string, ns: string) => secrets.find((s) => objectName(s.props, s.name) === name && namespaceOf(s.props) === ns);
    const k8s = workloads.filter(({ workload: w }) => w.target === "kubernetes").map((k) => ({ ...k, uses: secretUses(k.workload) }));
    // Who reads each Secret (namespace and name), for the message on an unlabelled one.
    const readers = new Map<string, Set<string>>();
    for (const { workload: w, uses } of k8s) {
        for (const use of uses) {
            const key = JSON.stringify([namespaceOf(w.props), use.secret]);
            readers.set(key, (readers.get(key) ?? new Set()).add(w.id.workload));
        }
    }
    const out: Array<{ urn: string; message: string }> = [];
    for (const { workload: w, urn, uses } of k8s) {
        const ns = namespaceOf(w.props);
        for (const use of uses) {
            const secret = declared(use.secret, ns);
            const owner = ownerOf(secret, use.secret);
            if (owner === undefined || owner === w.id.workload) continue;
            if (owner === null) {
                const others = [...(readers.get(JSON.stringify([ns, use.secret])) ?? [])].filter((id) => id !== w.id.workload);
                out.push({
                    urn,
                    message: `${w.label} (${LABEL_WORKLOAD} ${w.id.workload}) reads Secret "${use.secret}" (${use.field}), which the stack declares without a ` +
                        `${LABEL_WORKLOAD} label, so nothing says whose credentials it holds` +
                        (others.length ? `, and ${others.join(", ")} read${others.length === 1 ? "s" : ""} it too: one leak gives away every reader's access` : "") +
                        `. Label the Secret with the one workload it belongs to (the platform labels each <workload>-credentials), and give every other ` +
                        "reader a Secret of its own.",
                });
                continue;
            }
            const undeclared = secret ? "" : ", which the stack does not declare but names as that workload's";
            out.push({
                urn,
                message: `${w.label} (${LABEL_WORKLOAD} ${w.id.workload}) reads Secret "${use.secret}" of workload ${owner}${undeclared} (${use.field}), so its pods hold ` +
                    `${owner}'s credentials, and whoever takes them over does too. Give the workload a Secret of its own with only what it needs ` +
                    `(the platform writes <workload>-credentials for each), and leave ${owner}'s to ${owner}.`,
            });
        }
    }
    return out;
}

export const workloadSecretScope: StackValidationPolicy = {
    name: "workload-secret-scope",
    description:
        "No Kubernetes workload reads a Secret the stack declares for another workload (its trading.io/workload label): not by secretKeyRef, " +
        "envFrom (every key), a secret volume or a projected secret source; nor one the stack declares without that label, nor one named " +
        "<another platform workload>-credentials the stack does not declare (session 45).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const workloads = stackWorkloads(resources);
        if (!workloads.some(({ workload: w }) => w.target === "kubernetes" && secretUses(w).length > 0)) args.notApplicable("no Kubernetes workload reads a Secret");
        for (const f of foreignSecretUses(workloads, resources)) reportViolation(f.message, f.urn);
    },
};
