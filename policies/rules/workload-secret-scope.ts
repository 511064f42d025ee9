import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, str } from "../lib/values";
import { K8S, metadataLabels, namespaceOf, objectName } from "../lib/workloads";

/**
 * Session 44. Each workload of the platform takes its credentials from its own Secret
 * (`<workload>-credentials`, labelled with its `trading.io/workload`; components/runtime/kubernetes/secrets.ts):
 * a service holds its database URL, never the datastore's own password. Nothing judged which Secret a
 * workload reads, so a service taking `postgres-credentials` with `envFrom` (every key: the
 * superuser's password) or a `secretKeyRef`, or mounting it, passed every policy. A Secret the stack
 * declares for another workload (by its `trading.io/workload` label) is refused wherever a pod reads
 * it: `env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, a `secret` volume or a projected volume's
 * `secret` source. Secrets the stack does not declare, or without that label, are not judged (no owner
 * to compare); a name unknown during preview is judged at `up`.
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

/** Each use of another workload's Secret by a Kubernetes workload of the stack. */
export function foreignSecretUses(workloads: Array<{ workload: Workload; urn: string }>, resources: StackResource[]): Array<{ urn: string; message: string }> {
    const secrets = resources.filter((r) => r.type === K8S.secret);
    const out: Array<{ urn: string; message: string }> = [];
    for (const { workload: w, urn } of workloads) {
        if (w.target !== "kubernetes") continue;
        const ns = namespaceOf(w.props);
        for (const use of secretUses(w)) {
            const secret = secrets.find((s) => objectName(s.props, s.name) === use.secret && namespaceOf(s.props) === ns);
            const owner = secret ? metadataLabels(secret.props)[LABEL_WORKLOAD] : undefined;
            if (owner === undefined || owner === w.id.workload) continue;
            out.push({
                urn,
                message: `${w.label} (${LABEL_WORKLOAD} ${w.id.workload}) reads Secret "${use.secret}" of workload ${owner} (${use.field}), so its pods hold ` +
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
        "envFrom (every key), a secret volume or a projected secret source.",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => r.type === K8S.secret)) args.notApplicable("no Secret in this stack");
        for (const f of foreignSecretUses(stackWorkloads(args.resources, resources), resources)) reportViolation(f.message, f.urn);
    },
};
