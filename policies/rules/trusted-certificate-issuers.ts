import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { plainResources, StackResource } from "../lib/stack";
import { isRecord, isUnknown, str } from "../lib/values";
import { describe, metadataAnnotations, namespaceOf, objectName } from "../lib/workloads";

/**
 * Session 42. The stack config refuses a `trading:certIssuer` whose NAME says staging off dev: that
 * is all it can see (the ClusterIssuer is the cluster's). What a program declares, the pack sees: a
 * cert-manager Issuer or ClusterIssuer whose ACME server is a staging or test directory (its
 * certificates chain to a root no client trusts), plain http (anyone on the path answers as the CA
 * and issues for the host), or not verified (`skipTLSVerify`), and which Ingress or Certificate takes
 * its certificate from it. Prod-only: a dev stack may use a staging issuer on purpose.
 *
 * Session 43: an issuer the stack does not declare (the cluster's, as `trading:certIssuer` names it)
 * passed unseen, whatever its name. Its name must not say staging or test (the stack config's rule
 * for `trading:certIssuer`, for an Ingress or Certificate the program writes itself); and, its server
 * being out of the pack's sight, once `trustedClusterIssuers` lists any (prod.json does), it must be
 * one the operator has checked, listed there (a ClusterIssuer by name, an Issuer as `namespace/name`).
 */
export interface TrustedIssuersConfig {
    environment: Environment;
    /**
     * Issuers the stack does not declare that the operator has checked: ClusterIssuers by name, Issuers
     * as `namespace/name`. Empty (the default): an undeclared issuer is judged by its name only.
     */
    trustedClusterIssuers: string[];
}

const defaults: TrustedIssuersConfig = { environment: "prod", trustedClusterIssuers: [] };

/**
 * Whether an issuer's name says it issues untrusted test certificates, as the stack config reads
 * `trading:certIssuer` (stacks/config.ts isStagingIssuer): "staging" anywhere, or a dot- or
 * dash-separated word stage, stg, test, testing or fake.
 */
export function isStagingIssuerName(name: string): boolean {
    const n = name.toLowerCase();
    return n.includes("staging") || n.split(/[-.]/).some((word) => ["stage", "stg", "test", "testing", "fake"].includes(word));
}

const ISSUER = /^kubernetes:cert-manager\.io\/v\w+:(Issuer|ClusterIssuer)$/;
const CERTIFICATE = /^kubernetes:cert-manager\.io\/v\w+:(Certificate|CertificateRequest)$/;
const INGRESS = /^kubernetes:(networking\.k8s\.io|extensions)\/v1(beta1)?:Ingress$/;

/** Public ACME directories that issue test certificates only, by host. */
const STAGING_DIRECTORIES: ReadonlyMap<string, string> = new Map([
    ["acme-staging-v02.api.letsencrypt.org", "Let's Encrypt's staging directory"],
    ["acme-staging.api.letsencrypt.org", "Let's Encrypt's (v1) staging directory"],
    ["dv.acme-v02.test-api.pki.goog", "Google Trust Services' staging directory"],
    ["api.test4.buypass.no", "Buypass's test directory"],
]);

/** Why an ACME server's certificates are not to be trusted by a production stack's clients; undefined when it is a production CA's. */
export function untrustedAcmeServer(server: string): string | undefined {
    let url: URL;
    try {
        url = new URL(server.trim());
    } catch {
        return `its ACME server ${JSON.stringify(server)} is not a URL`;
    }
    if (url.protocol !== "https:") return `its ACME server ${url.origin} is not https (anyone on the path answers as the CA and issues for the host)`;
    const host = url.hostname.toLowerCase();
    const known = STAGING_DIRECTORIES.get(host);
    if (known) return `its ACME server ${url.origin} is ${known}, whose certificates chain to a root no browser or client trusts`;
    // Pebble (the ACME test server, https://<host>:14000/dir), a CA on the machine itself, or a host
    // that says what it is: staging, stage, stg, test, testing, pebble as a dot- or dash-separated word.
    const words = host.split(/[.-]/);
    if (url.port === "14000" || host === "localhost" || /^127\./.test(host) || host === "[::1]"
        || words.some((w) => ["staging", "stage", "stg", "test", "testing", "pebble", "fake"].includes(w))) {
        return `its ACME server ${url.origin} is a staging or test CA, whose certificates no browser or client trusts`;
    }
    return undefined;
}

/** An issuer's problem (unknown parts during preview are not judged). */
function issuerProblem(props: Record<string, any>): string | undefined {
    const acme = props.spec?.acme;
    if (!isRecord(acme)) return undefined;
    if (acme.skipTLSVerify === true) return "it does not verify its ACME server's certificate (spec.acme.skipTLSVerify)";
    if (isUnknown(acme.server)) return undefined;
    const server = str(acme.server);
    return server === undefined ? undefined : untrustedAcmeServer(server);
}

interface IssuerRef { kind: "Issuer" | "ClusterIssuer"; name: string; namespace: string; at: string }

/** The issuer an Ingress (cert-manager's ingress-shim annotations) or a Certificate (issuerRef) takes its certificate from. */
function issuerRefOf(r: StackResource): IssuerRef | undefined {
    const namespace = namespaceOf(r.props);
    const isCertManager = (group: string | undefined) => group === undefined || group === "" || group === "cert-manager.io";
    if (INGRESS.test(r.type)) {
        const a = metadataAnnotations(r.props);
        const cluster = a["cert-manager.io/cluster-issuer"];
        if (cluster) return { kind: "ClusterIssuer", name: cluster, namespace, at: "annotation cert-manager.io/cluster-issuer" };
        const issuer = a["cert-manager.io/issuer"];
        if (!issuer || !isCertManager(a["cert-manager.io/issuer-group"])) return undefined;
        const kind = a["cert-manager.io/issuer-kind"] === "ClusterIssuer" ? "ClusterIssuer" : "Issuer";
        return { kind, name: issuer, namespace, at: "annotation cert-manager.io/issuer" };
    }
    if (CERTIFICATE.test(r.type)) {
        const ref = r.props.spec?.issuerRef;
        const name = isRecord(ref) ? str(ref.name) : undefined;
        if (!name || !isCertManager(str(ref.group))) return undefined;
        return { kind: str(ref.kind) === "ClusterIssuer" ? "ClusterIssuer" : "Issuer", name, namespace, at: "spec.issuerRef" };
    }
    return undefined;
}

/** What is wrong with an issuer the stack does not declare, if anything. */
function undeclaredIssuerProblem(ref: IssuerRef, trusted: readonly string[]): string | undefined {
    if (isStagingIssuerName(ref.name)) return "its name says it is a staging or test issuer, whose certificates no browser or client trusts";
    const listed = ref.kind === "ClusterIssuer" ? ref.name : `${ref.namespace}/${ref.name}`;
    // An empty list (the default, as allowedRegistries' is) judges the name only; prod.json lists the stack's issuer.
    if (trusted.length === 0 || trusted.includes(listed)) return undefined;
    return `the stack does not declare it, so its CA is out of the pack's sight, and it is not listed in trustedClusterIssuers (as "${listed}")`;
}

const DECLARED_FIX = ": every client of this stack would fail TLS, or be taught to click through it. Point the issuer at a production ACME directory " +
    "over https (e.g. https://acme-v02.api.letsencrypt.org/directory), or use a production issuer; staging issuers belong to dev stacks.";
const UNDECLARED_FIX = ": a certificate from a staging, test or unknown CA fails every client's TLS, or teaches them to click through it. Use a production " +
    "issuer, and once its server is checked to be a production ACME directory over https, list it in this policy's trustedClusterIssuers " +
    "(or declare the issuer in the program, where the pack reads its server).";

/** Each Ingress or Certificate of the stack taking its certificate from an issuer that is not to be trusted. */
export function untrustedIssuerUses(resources: StackResource[], trusted: readonly string[] = []): { urn: string; message: string }[] {
    const issuers = resources.filter((r) => ISSUER.test(r.type));
    const out: { urn: string; message: string }[] = [];
    for (const user of resources) {
        const ref = issuerRefOf(user);
        if (!ref) continue;
        const issuer = issuers.find((i) => i.type.endsWith(`:${ref.kind}`) && objectName(i.props, i.name) === ref.name
            && (ref.kind === "ClusterIssuer" || namespaceOf(i.props) === ref.namespace));
        // An issuer whose name or namespace is not known during preview may be the one referenced: judged at `up`.
        const maybeDeclared = issuers.some((i) => i.type.endsWith(`:${ref.kind}`) && (isUnknown(i.props.metadata?.name) || namespaceOf(i.props) === "<unknown>"))
            || (ref.kind === "Issuer" && ref.namespace === "<unknown>");
        const problem = issuer ? issuerProblem(issuer.props) : maybeDeclared ? undefined : undeclaredIssuerProblem(ref, trusted);
        if (!problem) continue;
        out.push({
            urn: user.urn,
            message: `${describe(user.type, user.name)} takes its certificate from ${ref.kind} "${ref.name}" (${ref.at}), and ${problem}${issuer ? DECLARED_FIX : UNDECLARED_FIX}`,
        });
    }
    return out;
}

export const trustedCertificateIssuers: StackValidationPolicy = {
    name: "trusted-certificate-issuers",
    description:
        "On prod, no Ingress or cert-manager Certificate takes its certificate from an Issuer or ClusterIssuer the stack declares whose ACME " +
        "server is a staging or test directory (Let's Encrypt staging, Pebble, ...), is not https, or is not verified; nor from one the stack does not " +
        "declare unless listed in trustedClusterIssuers, and never one whose name says staging or test.",
    severity: "high",
    configSchema: {
        properties: {
            environment: environmentSchema,
            trustedClusterIssuers: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const use of untrustedIssuerUses(plainResources(args.resources), cfg.trustedClusterIssuers)) reportViolation(use.message, use.urn);
    },
};
