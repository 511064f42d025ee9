import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { plain, readField, str, isUnknown } from "../lib/values";
import { describe, kubernetesKind } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface ProtectedNamespacesConfig {
    /** Namespaces the platform must not deploy into; a trailing `*` matches a prefix (kube-*). */
    protectedNamespaces: string[];
}

const defaults: ProtectedNamespacesConfig = { protectedNamespaces: ["default", "kube-*"] };

/** Kinds that live outside namespaces (their metadata.namespace means nothing). */
const CLUSTER_SCOPED = new Set([
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass",
    "CustomResourceDefinition", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "IngressClass", "RuntimeClass", "CSIDriver",
    "CSINode", "VolumeAttachment", "APIService", "CertificateSigningRequest", "FlowSchema",
    "PriorityLevelConfiguration", "ComponentStatus",
]);

export function isProtected(ns: string, patterns: string[]): boolean {
    return patterns.some((p) => (p.endsWith("*") ? ns.startsWith(p.slice(0, -1)) : ns === p));
}

/** The protected namespace a Kubernetes object would land in (or declare), if any. */
export function protectedNamespaceOf(type: string, props: Record<string, any>, cfg: ProtectedNamespacesConfig = defaults): { ns: string; declared: boolean } | undefined {
    const kind = kubernetesKind(type);
    if (kind === undefined || kind.endsWith("List") || kind.endsWith("Patch")) return undefined;
    if (kind === "Namespace") {
        const name = str(props.metadata?.name);
        return name !== undefined && isProtected(name, cfg.protectedNamespaces) ? { ns: name, declared: true } : undefined;
    }
    if (CLUSTER_SCOPED.has(kind)) return undefined;
    const raw = props.metadata?.namespace;
    if (isUnknown(raw)) return undefined; // computed (e.g. the program's own Namespace): judged at update
    const ns = str(raw) ?? "default";
    return isProtected(ns, cfg.protectedNamespaces) ? { ns, declared: false } : undefined;
}

export const protectedNamespaces: ResourceValidationPolicy = {
    name: "protected-namespaces",
    description:
        "No platform object goes into the `default` namespace (also where an unset metadata.namespace lands) or a " +
        "`kube-*` system namespace: those hold the cluster's own components and are shared with every tenant.",
    severity: "high",
    configSchema: {
        properties: {
            protectedNamespaces: { type: "array", items: { type: "string" }, default: defaults.protectedNamespaces },
        },
    },
    // Session 53: a *List's items are the objects the API server applies, each judged as declared alone (lib/lists.ts).
    validateResource: readingListItems((args, reportViolation) => {
        if (kubernetesKind(args.type) === undefined) args.notApplicable("only Kubernetes objects");
        // Only the metadata is read: copying the rest of the engine's bag (a pod spec) would be wasted.
        const props: Record<string, any> = { metadata: plain<any>(readField(args.props, "metadata")) };
        // A declared Namespace whose Pod Security admission admits anything (a NamespacePatch doing the same is no-object-patches').
        if (kubernetesKind(args.type) === "Namespace" && !args.type.endsWith("Patch")) {
            const labels = props.metadata?.labels;
            const raw = isUnknown(labels) ? labels : labels?.["pod-security.kubernetes.io/enforce"];
            const level = str(raw);
            if (level === "privileged") {
                reportViolation(`${describe(args.type, args.name)} sets pod-security.kubernetes.io/enforce: privileged, so the API server admits any pod there ` +
                    "(host namespaces, privileged containers) whatever declared it; enforce restricted (the platform's own namespace) or baseline.");
            } else if (raw === undefined) {
                // Without the label the API server's default applies, which is privileged unless its
                // admission configuration says otherwise: the same namespace, silently (session 40).
                reportViolation(`${describe(args.type, args.name)} has no pod-security.kubernetes.io/enforce label, so Pod Security admission applies the cluster's ` +
                    "default level there, privileged unless the API server's admission configuration sets another (any pod admitted); " +
                    "label it enforce: restricted (the platform's own namespace) or baseline.");
            }
        }
        const hit = protectedNamespaceOf(args.type, props, readConfig(args, defaults));
        if (!hit) return;
        reportViolation(hit.declared
            ? `${describe(args.type, args.name)} declares the protected namespace "${hit.ns}"; the platform gets a namespace of its own (config trading:namespace).`
            : `${describe(args.type, args.name)} is deployed into the protected namespace "${hit.ns}"` +
              `${hit.ns === "default" ? " (metadata.namespace unset or \"default\")" : ""}; put it in the platform's own namespace ` +
              "(set metadata.namespace; config trading:namespace), never default or kube-*.");
    }),
};
