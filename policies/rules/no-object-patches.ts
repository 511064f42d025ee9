import { ResourceValidationPolicy } from "@pulumi/policy";
import { isRecord, plain } from "../lib/values";
import { describe, kubernetesKind } from "../lib/workloads";

/** What a patch may set without a check of its own: the object's address, labels and annotations. */
const METADATA_ONLY = new Set(["name", "namespace", "labels", "annotations"]);
/** Labels that decide what a namespace admits (Pod Security admission): never set by a patch. */
const POD_SECURITY_LABEL = /^pod-security\.kubernetes\.io\//;
/**
 * Annotations that configure what a controller or the kubelet does with the object, not describe it:
 * ingress controllers' (snippets, the HTTPS redirect, backend TLS), cloud load balancers' (internal or
 * public), and the legacy AppArmor and seccomp profiles of pods. A patch setting one changes the object.
 */
const BEHAVIOUR_ANNOTATION = /^(nginx\.ingress\.kubernetes\.io|ingress\.kubernetes\.io|traefik\.ingress\.kubernetes\.io|service\.beta\.kubernetes\.io|service\.kubernetes\.io|container\.apparmor\.security\.beta\.kubernetes\.io|seccomp\.security\.alpha\.kubernetes\.io)\/|^kubernetes\.io\/ingress\.class$/;

/**
 * What a `<Kind>Patch` resource (server-side apply to an existing object) changes beyond labels and
 * annotations, as field paths; the pod-security admission labels and the annotations that configure a
 * controller (BEHAVIOUR_ANNOTATION) it sets count as changes.
 */
export function patchedFields(props: Record<string, any>): string[] {
    const changed = Object.keys(props).filter((k) => !["apiVersion", "kind", "metadata"].includes(k));
    const metadata = isRecord(props.metadata) ? props.metadata : {};
    changed.push(...Object.keys(metadata).filter((k) => !METADATA_ONLY.has(k)).map((k) => `metadata.${k}`));
    const labels = isRecord(metadata.labels) ? Object.keys(metadata.labels) : [];
    changed.push(...labels.filter((l) => POD_SECURITY_LABEL.test(l)).map((l) => `metadata.labels["${l}"]`));
    const annotations = isRecord(metadata.annotations) ? Object.keys(metadata.annotations) : [];
    changed.push(...annotations.filter((a) => BEHAVIOUR_ANNOTATION.test(a)).map((a) => `metadata.annotations["${a}"]`));
    return changed;
}

/**
 * The pack checks whole objects as the program declares them. A `*Patch` (DeploymentPatch,
 * ServicePatch, ClusterRoleBindingPatch, ...) applies fields to an object that exists already,
 * declared elsewhere or by this program: a patch could make a checked Deployment privileged, a
 * Service public or a binding cluster-admin, and no policy would see the object it produces.
 */
export const noObjectPatches: ResourceValidationPolicy = {
    name: "no-object-patches",
    description:
        "No Kubernetes *Patch resource changes an object beyond its labels and annotations: the pack checks whole objects as " +
        "declared, and a patch applied to an existing object (a pod template made privileged, a Service made public, a " +
        "binding widened) produces one no policy sees. Declare the object in the program instead.",
    severity: "high",
    validateResource: (args, reportViolation) => {
        const kind = kubernetesKind(args.type);
        if (kind === undefined || !kind.endsWith("Patch")) return args.notApplicable("only Kubernetes patches");
        const changed = patchedFields(plain(args.props));
        if (changed.length === 0) return;
        reportViolation(`${describe(args.type, args.name)} changes ${changed.join(", ")} of an existing ${kind.slice(0, -"Patch".length)} ` +
            "by server-side apply, where no policy checks the object it produces; declare the object in the program " +
            "(the pack then checks it whole), or keep the patch to metadata labels and annotations.");
    },
};
