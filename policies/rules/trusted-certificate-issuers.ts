import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { INGRESS, IssuerRef, issuerRefOf, isIssuerProblem } from "../lib/cert-manager";
import { csrNames } from "../lib/csr";
import { plainResources, StackResource } from "../lib/stack";
import { isPrivateName } from "../lib/public-names";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { describe, namespaceOf, objectName } from "../lib/workloads";

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
 *
 * Session 44: an issuer that is not ACME (`selfSigned`, `ca`, `vault`, `venafi`) or not cert-manager's
 * at all (an external issuer: AWS PCA, Google CAS, step-ca, `issuer-group`/`issuerRef.group` other than
 * cert-manager.io) passed unjudged, serving the public Ingress with certificates no browser trusts.
 * A private CA is a fair choice for a private name (a cluster name, `*.internal`, a zone listed in
 * `internalDomains`), so it is judged by the names it certifies: a public name needs an ACME issuer
 * the pack judged above, or one listed in `trustedClusterIssuers` (never `selfSigned` or `ca`, whose
 * key sits in a Secret of the cluster, which no public CA hands out). An undeclared or external issuer
 * the operator checked to be a private CA goes in `internalIssuers`: private names only.
 *
 * Session 45: a CertificateRequest's names are read from its CSR (lib/csr.ts: subject common names, SAN
 * DNS names and addresses), not all judged public; a CSR the pack cannot read still is. An Ingress is
 * read as cert-manager's ingress-shim reads it (lib/cert-manager.ts): `cluster-issuer` together with
 * `issuer`, `issuer-kind` or `issuer-group`, or an empty issuer name, makes cert-manager issue nothing
 * (refused); `kubernetes.io/tls-acme` alone takes the controller's default issuer, judged as an issuer
 * the stack does not declare and cannot name.
 */
export interface TrustedIssuersConfig {
    environment: Environment;
    /**
     * Issuers the stack does not declare that the operator has checked: ClusterIssuers by name, Issuers
     * as `namespace/name`. Empty (the default): an undeclared issuer is judged by its name only.
     */
    trustedClusterIssuers: string[];
    /**
     * Session 44: issuers the operator has checked to be private CAs, accepted for private names only
     * (see `lib/public-names.ts`); same spelling as trustedClusterIssuers.
     */
    internalIssuers: string[];
    /** Session 44: the operator's own private DNS zones, beyond the special-use ones (`corp.example.com`). */
    internalDomains: string[];
}

const defaults: TrustedIssuersConfig = { environment: "prod", trustedClusterIssuers: [], internalIssuers: [], internalDomains: [] };

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

/** Whether an issuer kind is cluster-scoped: cert-manager's ClusterIssuer, an external `*ClusterIssuer` or `Cluster*`. */
function clusterScoped(kind: string): boolean {
    return /^Cluster|ClusterIssuer$/.test(kind);
}

/** How trustedClusterIssuers and internalIssuers spell an issuer: `name`, `namespace/name`, `[namespace/]<Kind>.<group>/name` for an external one. */
function listedAs(ref: IssuerRef): string {
    const own = ref.group === "cert-manager.io";
    const base = own ? ref.name : `${ref.kind}.${ref.group}/${ref.name}`;
    return clusterScoped(ref.kind) ? base : `${ref.namespace}/${base}`;
}

/** The issuer as messages name it: `ClusterIssuer "x"`, or `AWSPCAClusterIssuer "x" (awspca.cert-manager.io)`. */
function issuerLabel(ref: IssuerRef): string {
    return `${ref.kind} "${ref.name}"${ref.group === "cert-manager.io" ? "" : ` (${ref.group})`}`;
}

const CSR_UNREADABLE = "<csr>";

/** "the public name x", "the public names x, y", or a CertificateRequest's "the names of its CSR ...". */
function namesPhrase(publicNs: string[]): string {
    if (publicNs[0] === CSR_UNREADABLE) return "the names of its CSR (spec.request), which the pack cannot read as a PKCS#10 request, so judged as public";
    return `the public name${publicNs.length > 1 ? "s" : ""} ${publicNs.join(", ")}`;
}

/**
 * The public names a user certifies (Ingress: rules' and tls' hosts; Certificate: dnsNames, commonName,
 * ipAddresses; CertificateRequest: its CSR's, session 45), those unknown during preview left out. A CSR
 * the pack cannot read is judged as public (`[CSR_UNREADABLE]`).
 */
function publicNames(r: StackResource, internalDomains: readonly string[]): string[] {
    let names: unknown[];
    if (INGRESS.test(r.type)) {
        // Session 45: ingress-shim also copies cert-manager.io/common-name into the certificate's subject.
        names = [...arr(r.props.spec?.rules).map((rule) => (isRecord(rule) ? rule.host : undefined)),
            ...arr(r.props.spec?.tls).flatMap((t) => (isRecord(t) ? arr(t.hosts) : [])), r.props.metadata?.annotations?.["cert-manager.io/common-name"]];
    } else if (r.type.endsWith(":CertificateRequest")) {
        const request = r.props.spec?.request;
        if (isUnknown(request)) return [];
        try {
            names = csrNames(str(request) ?? "");
        } catch {
            return [CSR_UNREADABLE];
        }
    } else {
        const spec = r.props.spec ?? {};
        // Session 45: a literalSubject (RFC 4514, cert-manager's LiteralCertificateSubject) names its CN there instead of commonName.
        names = [...arr(spec.dnsNames), spec.commonName, ...arr(spec.ipAddresses), ...literalCommonNames(spec.literalSubject)];
    }
    const known = names.map((n) => str(n)).filter((n): n is string => n !== undefined && n.trim() !== "");
    return [...new Set(known.filter((n) => !isPrivateName(n, internalDomains)))];
}

/** The CN values of an RFC 4514 subject string (`CN=trading.example.com,O=Corp`), escapes undone. */
export function literalCommonNames(subject: unknown): string[] {
    const text = str(subject);
    if (text === undefined) return [];
    return [...text.matchAll(/(?:^|[,+])\s*CN\s*=\s*((?:\\.|[^,+\\])*)/gi)].map((m) => m[1].replace(/\\(.)/g, "$1").trim());
}

/** The kind of CA a declared cert-manager issuer is: acme, ca, selfSigned, vault, venafi (or "unknown"). */
function issuerType(props: Record<string, any>): string {
    const spec = isRecord(props.spec) ? props.spec : {};
    return ["acme", "ca", "selfSigned", "vault", "venafi"].find((t) => spec[t] !== undefined) ?? "unknown";
}

const PRIVATE_KEY_CAS = new Set(["ca", "selfSigned"]);

/**
 * A declared issuer that is not ACME, serving public names: `selfSigned` and `ca` sign with a key held
 * in the cluster (never a public CA's), Vault and Venafi unless the operator listed them as checked.
 */
function privateIssuerProblem(props: Record<string, any>, ref: IssuerRef, publicNs: string[], cfg: TrustedIssuersConfig): string | undefined {
    const type = issuerType(props);
    if (type === "acme" || publicNs.length === 0) return undefined;
    if (!PRIVATE_KEY_CAS.has(type) && cfg.trustedClusterIssuers.includes(listedAs(ref))) return undefined;
    const what = type === "selfSigned" ? "a self-signed issuer (spec.selfSigned)"
        : type === "ca" ? "a private CA (spec.ca, its key in a Secret of the cluster)"
            : type === "unknown" ? "not an ACME issuer" : `a ${type} issuer (spec.${type}), a private CA unless listed in trustedClusterIssuers (as "${listedAs(ref)}")`;
    return `it is ${what}, whose certificates no browser trusts, for ${namesPhrase(publicNs)}`;
}

const DECLARED_FIX = ": every client of this stack would fail TLS, or be taught to click through it. Point the issuer at a production ACME directory " +
    "over https (e.g. https://acme-v02.api.letsencrypt.org/directory), or use a production issuer; staging issuers belong to dev stacks.";
const UNDECLARED_FIX = ": a certificate from a staging, test or unknown CA fails every client's TLS, or teaches them to click through it. Use a production " +
    "issuer, and once its server is checked to be a production ACME directory over https, list it in this policy's trustedClusterIssuers " +
    "(or declare the issuer in the program, where the pack reads its server).";
const PRIVATE_FIX = ": browsers refuse the certificate, and the stack's users learn to click through the warning. Serve public names from a production " +
    "ACME issuer (e.g. Let's Encrypt); a private CA is fine for private names only (a single label, *.svc, *.cluster.local, *.internal, *.local, *.test, " +
    "*.home.arpa, private addresses, or a zone listed in this policy's internalDomains); an issuer checked to chain to a public root goes in trustedClusterIssuers.";

interface Problem { text: string; fix: string }

/** What is wrong with an issuer the stack does not declare (or an external one, whose CA the pack never sees), if anything. */
function undeclaredIssuerProblem(ref: IssuerRef, publicNs: string[], cfg: TrustedIssuersConfig): Problem | undefined {
    if (isStagingIssuerName(ref.name)) return { text: "its name says it is a staging or test issuer, whose certificates no browser or client trusts", fix: UNDECLARED_FIX };
    const listed = listedAs(ref);
    if (cfg.trustedClusterIssuers.includes(listed)) return undefined;
    const names = namesPhrase(publicNs);
    if (cfg.internalIssuers.includes(listed)) {
        return publicNs.length === 0 ? undefined
            : { text: `it is listed in internalIssuers (as "${listed}"), a private CA whose certificates no browser trusts, for ${names}`, fix: PRIVATE_FIX };
    }
    if (ref.group !== "cert-manager.io" && publicNs.length > 0) {
        return {
            text: `it is an external issuer, whose CA is out of the pack's sight (AWS PCA, Google CAS and step-ca are private CAs), not listed in trustedClusterIssuers (as "${listed}"), for ${names}`,
            fix: PRIVATE_FIX,
        };
    }
    // Both lists empty (the default, as allowedRegistries' is) judge the name only; prod.json lists the stack's issuer.
    if (cfg.trustedClusterIssuers.length === 0 && cfg.internalIssuers.length === 0) return undefined;
    const lists = publicNs.length === 0 ? "trustedClusterIssuers or internalIssuers" : "trustedClusterIssuers";
    return { text: `the stack does not declare it, so its CA is out of the pack's sight, and it is not listed in ${lists} (as "${listed}")`, fix: UNDECLARED_FIX };
}

/** Each Ingress or Certificate of the stack taking its certificate from an issuer that is not to be trusted. */
export function untrustedIssuerUses(resources: StackResource[], config: Partial<TrustedIssuersConfig> = {}): { urn: string; message: string }[] {
    const cfg: TrustedIssuersConfig = { ...defaults, ...config };
    const issuers = resources.filter((r) => ISSUER.test(r.type));
    const out: { urn: string; message: string }[] = [];
    for (const user of resources) {
        const use = issuerRefOf(user);
        if (!use) continue;
        if (isIssuerProblem(use)) {
            // The controller's default issuer is judged as an undeclared one is: once the lists hold any, it must be named and listed.
            if (use.refused || cfg.trustedClusterIssuers.length > 0 || cfg.internalIssuers.length > 0) {
                out.push({ urn: user.urn, message: `${describe(user.type, user.name)} ${use.problem}${use.fix}` });
            }
            continue;
        }
        const ref: IssuerRef = use;
        const own = ref.group === "cert-manager.io";
        const issuer = own ? issuers.find((i) => i.type.endsWith(`:${ref.kind}`) && objectName(i.props, i.name) === ref.name
            && (ref.kind === "ClusterIssuer" || namespaceOf(i.props) === ref.namespace)) : undefined;
        // An issuer whose name or namespace is not known during preview may be the one referenced: judged at `up`.
        const maybeDeclared = own && (issuers.some((i) => i.type.endsWith(`:${ref.kind}`) && (isUnknown(i.props.metadata?.name) || namespaceOf(i.props) === "<unknown>"))
            || (ref.kind === "Issuer" && ref.namespace === "<unknown>"));
        const publicNs = publicNames(user, cfg.internalDomains);
        let problem: Problem | undefined;
        if (issuer) {
            const acme = issuerProblem(issuer.props);
            const priv = acme ? undefined : privateIssuerProblem(issuer.props, ref, publicNs, cfg);
            problem = acme ? { text: acme, fix: DECLARED_FIX } : priv ? { text: priv, fix: PRIVATE_FIX } : undefined;
        } else if (!maybeDeclared) {
            problem = undeclaredIssuerProblem(ref, publicNs, cfg);
        }
        if (!problem) continue;
        out.push({
            urn: user.urn,
            message: `${describe(user.type, user.name)} takes its certificate from ${issuerLabel(ref)} (${ref.at}), and ${problem.text}${problem.fix}`,
        });
    }
    return out;
}

export const trustedCertificateIssuers: StackValidationPolicy = {
    name: "trusted-certificate-issuers",
    description:
        "On prod, no Ingress or cert-manager Certificate takes its certificate from an Issuer or ClusterIssuer the stack declares whose ACME " +
        "server is a staging or test directory (Let's Encrypt staging, Pebble, ...), is not https, or is not verified; nor from one the stack does not " +
        "declare unless listed in trustedClusterIssuers, and never one whose name says staging or test; public names (not *.svc, *.internal, ..., internalDomains) " +
        "only from an ACME issuer or one listed in trustedClusterIssuers, never selfSigned, a private ca or an unlisted external issuer (session 44).",
    severity: "high",
    configSchema: {
        properties: {
            environment: environmentSchema,
            trustedClusterIssuers: { type: "array", items: { type: "string" }, default: [] },
            internalIssuers: { type: "array", items: { type: "string" }, default: [] },
            internalDomains: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const use of untrustedIssuerUses(plainResources(args.resources), cfg)) reportViolation(use.message, use.urn);
    },
};
