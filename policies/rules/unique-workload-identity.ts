import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { catalog } from "../../catalog/services";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources } from "../lib/stack";
import { arr, hasUnknown, isRecord, isUnknown, str } from "../lib/values";
import { DATASTORES, MONITORING, namespaceOf, workloadLabels } from "../lib/workloads";

/** The platform's workloads by name: a Docker alias of one of them is a name its clients resolve. */
const PLATFORM_WORKLOADS: ReadonlySet<string> = new Set([...catalog.map((s) => s.name), ...DATASTORES, ...MONITORING]);

/** What the program's Docker replicas of one workload (`<workload>-1`, `-2`) hold each of their own: everything else is the workload's. */
const REPLICA_OWN = ["name", "hostname", "ports"];

/**
 * Session 62. Which workload a pod or container is, to the platform and to the pack, is its `trading.io/workload`
 * label: the Services and NetworkPolicies select it, `workload-secret-scope` and `workload-volume-scope` let it read
 * that workload's Secrets and storage, the datastore rules judge it as that datastore. Nothing said two workloads
 * could not claim one name, so a Deployment `impostor` whose pods say `trading.io/workload: postgres` was selected by
 * PostgreSQL's Service (clients' connections and passwords, in turn with the real pods), admitted by its
 * NetworkPolicy, and given `postgres-credentials` and its claims by the scope policies. On Docker the name clients
 * resolve is a network alias: a container joining the network as `postgres` (or as the gateway) got every other
 * lookup of that name from Docker's DNS, which answers with each container holding it.
 *
 * Refused: two Kubernetes workloads (any kinds) of one namespace with the same label; two Docker containers with the
 * same label that are not replicas of one another (the program's replicas, `<workload>-1`, `-2`, differ in their name,
 * hostname and published ports only); a Docker network alias naming another workload (a declared container's label, or a platform workload's
 * name). A value unknown during preview is judged at `up`.
 */
export function identityClashes(workloads: Array<{ workload: Workload; urn: string }>): Array<{ urn: string; message: string }> {
    const out: Array<{ urn: string; message: string }> = [];
    const labelled = workloads.map((x) => ({ ...x, id: workloadLabels(x.workload.type, x.workload.props)[LABEL_WORKLOAD]?.trim() }))
        .filter((x): x is typeof x & { id: string } => !!x.id);
    const first = new Map<string, (typeof labelled)[number]>();
    for (const x of labelled) {
        const w = x.workload;
        const key = JSON.stringify([w.target, w.target === "kubernetes" ? namespaceOf(w.props) : "", x.id]);
        const earlier = first.get(key);
        if (!earlier) {
            first.set(key, x);
            continue;
        }
        if (w.target === "kubernetes") {
            out.push({
                urn: x.urn,
                message: `${w.label} labels its pods ${LABEL_WORKLOAD}: ${x.id} in namespace ${namespaceOf(w.props)}, as ${earlier.workload.label} does, so the ` +
                    `Services and NetworkPolicies of ${x.id} select both, and the pack gives both ${x.id}'s Secrets and storage: whichever runs there ` +
                    `takes ${x.id}'s clients and their credentials. Give every workload a ${LABEL_WORKLOAD} of its own.`,
            });
            continue;
        }
        const fields = [...new Set([...Object.keys(w.props), ...Object.keys(earlier.workload.props)])].filter((f) => !REPLICA_OWN.includes(f)).sort();
        const differs = fields.filter((f) =>
            !hasUnknown(w.props[f]) && !hasUnknown(earlier.workload.props[f]) && JSON.stringify(w.props[f] ?? null) !== JSON.stringify(earlier.workload.props[f] ?? null));
        if (differs.length) {
            out.push({
                urn: x.urn,
                message: `${w.label} is labelled ${LABEL_WORKLOAD}: ${x.id}, as ${earlier.workload.label} is, but differs from it in ${differs.join(", ")}: it is no replica ` +
                    `of ${x.id}, and the pack would give it ${x.id}'s storage. Give every workload a ${LABEL_WORKLOAD} of its own.`,
            });
        }
    }
    const dockerIds = new Set(labelled.filter((x) => x.workload.target === "docker").map((x) => x.id));
    for (const { workload: w, urn } of workloads) {
        if (w.target !== "docker") continue;
        const own = w.id.workload;
        arr(w.props.networksAdvanced).forEach((n, i) => {
            if (!isRecord(n)) return;
            arr(n.aliases).forEach((a, j) => {
                if (isUnknown(a)) return;
                const alias = str(a)?.trim().toLowerCase().replace(/\.$/, "");
                if (!alias || alias === own.toLowerCase() || !(dockerIds.has(alias) || PLATFORM_WORKLOADS.has(alias))) return;
                out.push({
                    urn,
                    message: `${w.label} (${LABEL_WORKLOAD} ${own}) joins network "${str(n.name) ?? i}" with the alias "${alias}" (networksAdvanced[${i}].aliases[${j}]), ` +
                        `the name of workload ${alias}: Docker's DNS answers ${alias}'s clients with this container too, and they send it their requests and ` +
                        `credentials. Keep its aliases to its own workload's name.`,
                });
            });
        });
    }
    return out;
}

export const uniqueWorkloadIdentity: StackValidationPolicy = {
    name: "unique-workload-identity",
    description:
        "No two workloads claim one trading.io/workload (two Kubernetes workloads of a namespace; Docker containers other than replicas, " +
        "alike but for name, hostname and ports), and no Docker container takes another workload's name as a network alias (session 62).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const workloads = stackWorkloads(plainResources(args.resources));
        if (workloads.length === 0) args.notApplicable("no workloads");
        for (const f of identityClashes(workloads)) reportViolation(f.message, f.urn);
    },
};
