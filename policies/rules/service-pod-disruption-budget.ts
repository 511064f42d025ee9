import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { selectorMatches } from "../lib/selectors";
import { plainResources, replicaFloor, StackResource } from "../lib/stack";
import { num, str } from "../lib/values";
import { identity, isSingletonDeployment, K8S, K8S_REPLICATED, namespaceOf, objectName, podTemplate } from "../lib/workloads";

export interface PdbConfig {
    environment: Environment;
}

const defaults: PdbConfig = { environment: "prod" };

/** Does this PDB block every voluntary eviction (node drains hang)? */
function blocksAllEvictions(pdb: Record<string, any>, replicas: number | undefined): boolean {
    const maxUnavailable = pdb.spec?.maxUnavailable;
    if (maxUnavailable === 0 || str(maxUnavailable) === "0%" || str(maxUnavailable) === "0") return true;
    const minAvailable = pdb.spec?.minAvailable;
    if (str(minAvailable) === "100%") return true;
    const n = num(minAvailable);
    return n !== undefined && replicas !== undefined && n >= replicas;
}

/**
 * Session 44: does this PDB let every pod go at once (`maxUnavailable: 100%`, or at least the replica
 * count; `minAvailable: 0` or `0%`)? It then selects the pods and protects none of them: a node drain or
 * a cluster upgrade evicts every replica together. The setting it allows, for the message; undefined otherwise.
 */
function allowsEveryEviction(pdb: Record<string, any>, replicas: number | undefined): string | undefined {
    // One replica is no budget's to protect: service-min-replicas judges the count.
    if (replicas !== undefined && replicas < 2) return undefined;
    const maxUnavailable = pdb.spec?.maxUnavailable;
    const percent = (v: unknown) => { const m = /^\s*(\d+)\s*%\s*$/.exec(str(v) ?? ""); return m ? Number(m[1]) : undefined; };
    if ((percent(maxUnavailable) ?? 0) >= 100) return `maxUnavailable: ${str(maxUnavailable)}`;
    const max = num(maxUnavailable);
    if (max !== undefined && replicas !== undefined && max >= replicas) return `maxUnavailable: ${max} of ${replicas} replicas`;
    const minAvailable = pdb.spec?.minAvailable;
    if (num(minAvailable) === 0 || percent(minAvailable) === 0) return `minAvailable: ${minAvailable}`;
    return undefined;
}

const kindOf = (r: StackResource) => r.type.split(":").pop();

export function pdbFindings(resources: StackResource[]): Array<{ urn: string; message: string }> {
    const pdbs = resources.filter((r) => r.type === K8S.pdb);
    const out: Array<{ urn: string; message: string }> = [];
    for (const d of resources.filter((r) => K8S_REPLICATED.includes(r.type))) {
        // Services always; any other replicated workload once it runs two or more (kube-score's
        // deployment-has-poddisruptionbudget / statefulset-has-poddisruptionbudget).
        const replicated = (replicaFloor(d, resources) ?? 1) >= 2;
        const isService = identity(d.type, d.name, d.props).role === "service";
        if (!isService && !replicated) continue;
        // A declared singleton cannot have two replicas or a PDB that allows an eviction; its
        // downtime during a rollout is the accepted price (see the catalog entry for why).
        if (isSingletonDeployment(d.type, d.props)) continue;
        const tmpl = podTemplate(d.type, d.props);
        const ns = namespaceOf(d.props);
        const name = objectName(d.props, d.name);
        const matching = pdbs.filter((p) => namespaceOf(p.props) === ns && selectorMatches(p.props.spec?.selector, tmpl?.labels ?? {}));
        if (matching.length === 0) {
            out.push({
                urn: d.urn,
                message: `${kindOf(d)} "${name}" (${isService ? "role=service" : "replicated"}) has no PodDisruptionBudget selecting its pods in namespace "${ns}"; ` +
                    "add one (policy/v1, selector.matchLabels = its trading.io/workload label, maxUnavailable: 1).",
            });
            continue;
        }
        // Session 45: the eviction API refuses to evict a pod that more than one budget selects (an error, every
        // time), so a node drain hangs on it as on a budget that allows nothing.
        for (const p of matching.slice(1)) {
            out.push({
                urn: p.urn,
                message: `PodDisruptionBudget "${objectName(p.props, p.name)}" selects the pods of ${kindOf(d)} "${name}", which PodDisruptionBudget ` +
                    `"${objectName(matching[0].props, matching[0].name)}" selects already: the eviction API refuses to evict a pod under more than one budget, ` +
                    "so node drains hang on every one of them; keep one PodDisruptionBudget per workload (narrow the other's selector).",
            });
        }
        const replicas = num(d.props.spec?.replicas);
        for (const p of matching.filter((m) => blocksAllEvictions(m.props, replicas))) {
            out.push({
                urn: p.urn,
                message: `PodDisruptionBudget "${objectName(p.props, p.name)}" allows no disruption of ${kindOf(d)} "${name}", so node ` +
                    "drains hang; use maxUnavailable: 1 (or minAvailable below the replica count).",
            });
        }
        const floor = replicaFloor(d, resources) ?? replicas;
        for (const p of matching) {
            const every = allowsEveryEviction(p.props, floor);
            if (every === undefined) continue;
            out.push({
                urn: p.urn,
                message: `PodDisruptionBudget "${objectName(p.props, p.name)}" lets every pod of ${kindOf(d)} "${name}" be evicted at once (${every}), so ` +
                    "a node drain or cluster upgrade takes it down while it seems covered; use maxUnavailable: 1 (or minAvailable below the replica count).",
            });
        }
    }
    return out;
}

export const servicePodDisruptionBudget: StackValidationPolicy = {
    name: "service-pod-disruption-budget",
    description: "On prod, every service Deployment and every replicated Deployment or StatefulSet has a PodDisruptionBudget whose selector matches its pods, " +
        "that still allows drains and that does not let every pod go at once (maxUnavailable 100%, minAvailable 0; session 44), and only one (session 45).",
    severity: "medium",
    configSchema: { properties: { environment: environmentSchema } },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const v of pdbFindings(plainResources(args.resources))) reportViolation(v.message, v.urn);
    },
};
