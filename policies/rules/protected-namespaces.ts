import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { isRecord, isUnknown, plain, readField, str } from "../lib/values";
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

const ENFORCE = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version";

/**
 * What a declared Namespace's Pod Security labels let the API server admit beyond the restricted profile, the one the
 * pack holds the program's own pods to: any pod made there at run time (by a controller, an operator, whoever may
 * create pods) is judged by admission alone. Labels unknown during preview are judged at `up`.
 */
export function podSecurityLabelProblems(labels: unknown): string[] {
    if (isUnknown(labels)) return [];
    const raw = isRecord(labels) ? labels[ENFORCE] : undefined;
    const level = str(raw);
    const out: string[] = [];
    if (level === "privileged") {
        out.push(`sets ${ENFORCE}: privileged, so the API server admits any pod there (host namespaces, privileged containers) ` +
            "whatever declared it; enforce restricted.");
    } else if (raw === undefined) {
        // Without the label the API server's default applies, which is privileged unless its
        // admission configuration says otherwise: the same namespace, silently (session 40).
        out.push(`has no ${ENFORCE} label, so Pod Security admission applies the cluster's ` +
            "default level there, privileged unless the API server's admission configuration sets another (any pod admitted); " +
            "label it enforce: restricted.");
    } else if (level !== undefined && level !== "restricted") {
        // Session 63: baseline admits pods running as root, with the runtime's default capabilities (NET_RAW, CHOWN,
        // SETUID...), privilege escalation and no seccomp profile; the pack holds its own pods to restricted.
        out.push(`sets ${ENFORCE}: ${level}, so the API server admits pods there that the restricted profile refuses (running as root, ` +
            "the runtime's default capabilities, privilege escalation, no seccomp profile) whatever creates them; enforce restricted, " +
            "the level the pack holds the platform's own pods to.");
    }
    // Session 63: a pinned version evaluates pods by that release's profile: the controls added since (1.34's probe and
    // lifecycle hosts among them) are skipped for every pod of the namespace.
    const version = isRecord(labels) ? labels[ENFORCE_VERSION] : undefined;
    if (!isUnknown(version) && version !== undefined && str(version) !== "latest") {
        out.push(`sets ${ENFORCE_VERSION}: ${JSON.stringify(version)}, so Pod Security admission judges its pods by that release's profile and ` +
            "skips every control added since (1.34's probe and lifecycle hosts among them); set it to latest, or leave it out (latest).");
    }
    // Session 63b: warn and audit report what enforce would refuse (to the client, to the audit log); a weaker level, or a
    // version pinned to an older release, hides from the people reading them the pods enforce refuses, and so why.
    for (const mode of ["warn", "audit"] as const) {
        const label = `pod-security.kubernetes.io/${mode}`;
        const modeRaw = isRecord(labels) ? labels[label] : undefined;
        const modeLevel = str(modeRaw);
        if (modeRaw !== undefined && !isUnknown(modeRaw) && modeLevel !== "restricted") {
            out.push(`sets ${label}: ${modeLevel ?? JSON.stringify(modeRaw)}, weaker than restricted, the level enforce must hold: the ${mode === "warn" ? "warnings its clients get" : "audit log's annotations"} ` +
                "say nothing of the pods enforce refuses there, so whoever reads them does not learn why; set it to restricted, or leave it out.");
        }
        const modeVersion = isRecord(labels) ? labels[`${label}-version`] : undefined;
        if (modeVersion !== undefined && !isUnknown(modeVersion) && str(modeVersion) !== "latest") {
            out.push(`sets ${label}-version: ${JSON.stringify(modeVersion)}, so its ${mode === "warn" ? "warnings" : "audit annotations"} judge pods by that ` +
                "release's profile and stay silent on every control added since; set it to latest, or leave it out (latest).");
        }
    }
    return out;
}

export const protectedNamespaces: ResourceValidationPolicy = {
    name: "protected-namespaces",
    description:
        "No platform object goes into the `default` namespace (also where an unset metadata.namespace lands) or a " +
        "`kube-*` system namespace: those hold the cluster's own components and are shared with every tenant; a declared " +
        "Namespace enforces Pod Security's restricted level at its latest version (pod-security.kubernetes.io/enforce, " +
        "enforce-version), and warns and audits at no weaker level or older version (warn, audit and their -version).",
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
        // A declared Namespace whose Pod Security admission admits more than restricted (a NamespacePatch doing the same is no-object-patches').
        if (kubernetesKind(args.type) === "Namespace" && !args.type.endsWith("Patch")) {
            for (const p of podSecurityLabelProblems(props.metadata?.labels)) reportViolation(`${describe(args.type, args.name)} ${p}`);
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
