/**
 * Which issuer cert-manager takes a certificate from, read as cert-manager reads it: an Ingress through
 * its ingress-shim annotations, a Certificate or CertificateRequest through `spec.issuerRef`.
 */
import type { StackResource } from "./stack";
import { isRecord, str } from "./values";
import { metadataAnnotations, namespaceOf } from "./workloads";

export interface IssuerRef {
    kind: string;
    name: string;
    namespace: string;
    at: string;
    /** The issuer's API group: "cert-manager.io" for cert-manager's own, else an external issuer's. */
    group: string;
}

/** An Ingress whose annotations cert-manager refuses (no certificate issued), or whose issuer is cert-manager's default. */
export interface IssuerProblem {
    problem: string;
    fix: string;
    /** true: cert-manager issues nothing; false: the controller's default issuer, which the pack cannot name. */
    refused: boolean;
}

export const INGRESS = /^kubernetes:(networking\.k8s\.io|extensions)\/v1(beta1)?:Ingress$/;
export const CERTIFICATE = /^kubernetes:cert-manager\.io\/v\w+:(Certificate|CertificateRequest)$/;

const CLUSTER_ISSUER = "cert-manager.io/cluster-issuer";
const ISSUER = "cert-manager.io/issuer";
const KIND = "cert-manager.io/issuer-kind";
const GROUP = "cert-manager.io/issuer-group";
const TLS_ACME = "kubernetes.io/tls-acme";

const REFUSED_FIX = ": cert-manager refuses the Ingress (a BadConfig event) and issues no certificate, so it serves whatever its TLS Secret holds (the " +
    "controller's self-signed default, or a certificate nobody renews). Name one issuer: cert-manager.io/cluster-issuer alone, or cert-manager.io/issuer " +
    "with issuer-kind and issuer-group for an external one.";
const DEFAULT_FIX = ": the issuer is whatever the controller's --default-issuer-name says, out of the pack's sight (and none, if unset: no certificate). " +
    "Name the issuer with cert-manager.io/cluster-issuer (or cert-manager.io/issuer).";

/**
 * Session 45: cert-manager's ingress-shim (pkg/controller/certificate-shim, issuerForIngressLike) takes
 * an annotation by its presence, empty or not, and refuses `cluster-issuer` together with `issuer`,
 * `issuer-kind` or `issuer-group`, or an empty issuer name. The pack read `cluster-issuer` first and
 * passed such an Ingress on the issuer it named. `kubernetes.io/tls-acme: "true"` without either names
 * the controller's default issuer.
 */
function ingressIssuer(r: StackResource): IssuerRef | IssuerProblem | undefined {
    const raw = isRecord(r.props.metadata?.annotations) ? r.props.metadata.annotations : {};
    const has = (key: string) => Object.prototype.hasOwnProperty.call(raw, key);
    const a = metadataAnnotations(r.props);
    const namespace = namespaceOf(r.props);
    if (has(CLUSTER_ISSUER)) {
        const clash = [ISSUER, KIND, GROUP].filter(has);
        if (clash.length) return { problem: `sets ${CLUSTER_ISSUER} together with ${clash.join(", ")}, which cert-manager refuses`, fix: REFUSED_FIX, refused: true };
    }
    if (!has(CLUSTER_ISSUER) && !has(ISSUER)) {
        const acme = (a[TLS_ACME] ?? "").trim().toLowerCase();
        return ["true", "1", "t"].includes(acme) ? { problem: `takes its certificate from cert-manager's default issuer (annotation ${TLS_ACME})`, fix: DEFAULT_FIX, refused: false } : undefined;
    }
    const key = has(CLUSTER_ISSUER) ? CLUSTER_ISSUER : ISSUER;
    if (!(key in a)) return undefined; // computed during preview: judged at `up`
    const name = a[key].trim();
    if (name === "") return { problem: `sets ${key} to an empty name, which cert-manager refuses`, fix: REFUSED_FIX, refused: true };
    if (key === CLUSTER_ISSUER) return { kind: "ClusterIssuer", name, namespace, at: `annotation ${CLUSTER_ISSUER}`, group: "cert-manager.io" };
    const ref = issuerRef(name, a[KIND], a[GROUP], namespace, "");
    return { ...ref, at: ref.group === "cert-manager.io" ? `annotation ${ISSUER}` : "annotations cert-manager.io/issuer, issuer-kind, issuer-group" };
}

/**
 * A reference as cert-manager resolves it: an empty group is cert-manager's own, whose kinds are
 * Issuer (the default) and ClusterIssuer; an external issuer keeps its own kind and group.
 */
function issuerRef(name: string, kind: string | undefined, group: string | undefined, namespace: string, at: string): IssuerRef {
    const g = group?.trim() || "cert-manager.io";
    const k = kind || "Issuer";
    return { kind: g === "cert-manager.io" && k !== "ClusterIssuer" ? "Issuer" : k, name, namespace, at, group: g };
}

/**
 * The issuer an Ingress (cert-manager's ingress-shim annotations) or a Certificate (issuerRef) takes its
 * certificate from, or why cert-manager would issue none (or from an issuer the pack cannot name). An
 * external issuer (group other than cert-manager.io) keeps its own kind and group.
 */
export function issuerRefOf(r: StackResource): IssuerRef | IssuerProblem | undefined {
    if (INGRESS.test(r.type)) return ingressIssuer(r);
    if (!CERTIFICATE.test(r.type)) return undefined;
    const ref = r.props.spec?.issuerRef;
    const name = isRecord(ref) ? str(ref.name) : undefined;
    if (!name) return undefined;
    return issuerRef(name, str(ref.kind), str(ref.group), namespaceOf(r.props), "spec.issuerRef");
}

export function isIssuerProblem(x: IssuerRef | IssuerProblem): x is IssuerProblem {
    return "problem" in x;
}
