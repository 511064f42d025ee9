import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { parseImageRef } from "../../catalog/images";
import { readProgramFile } from "../lib/dockerfile";
import { nginxTlsProblems } from "../lib/nginx";
import { forEveryWorkload } from "../lib/rule";
import { arr, decodeBase64, isRecord, isUnknown, plain, str } from "../lib/values";
import { describe, metadataAnnotations, objectName } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface EdgeTlsConfig {
    /** Image basenames treated as the nginx edge even without role=edge. */
    nginxImages: string[];
}

const defaults: EdgeTlsConfig = { nginxImages: ["nginx", "nginx-unprivileged", "openresty"] };

/** A Traefik ServersTransport (HTTP) or ServersTransportTCP, either group, any version. */
const SERVERS_TRANSPORT = /^kubernetes:traefik\.(io|containo\.us)\/[^:]+:ServersTransport(TCP)?$/;

/** Session 54: a Traefik TLSOption, either group, any version: the TLS versions and cipher suites of the routers using it. */
const TLS_OPTION = /^kubernetes:traefik\.(io|containo\.us)\/[^:]+:TLSOption$/;

/**
 * The TLS 1.2 cipher suites Mozilla's "intermediate" configuration keeps (ECDHE key exchange, an AEAD cipher: forward secrecy,
 * no CBC padding oracle), in Go's names as Traefik takes them (CHACHA20_POLY1305 with or without its `_SHA256`), and the TLS 1.3
 * ones (Go picks those itself and ignores them in the list). Anything else is weak: CBC (Lucky13, POODLE-class oracles), RSA key
 * exchange (a stolen key decrypts every recorded session), 3DES (Sweet32), RC4.
 */
export const STRONG_CIPHER_SUITES: readonly string[] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
];
const OLD_TLS: Record<string, string> = { VersionTLS10: "TLS 1.0", VersionTLS11: "TLS 1.1" };

/**
 * Session 54: what a Traefik TLSOption lets through (its `minVersion` defaults to VersionTLS12, its cipher suites to Go's
 * secure list): a `minVersion` or `maxVersion` below TLS 1.2 (1.0 and 1.1: BEAST, no AEAD, deprecated by RFC 8996), and any
 * cipher suite outside `STRONG_CIPHER_SUITES`. The one named `default` applies to every router that names no other option.
 */
export function tlsOptionProblems(props: Record<string, any>): string[] {
    const spec = isRecord(props.spec) ? props.spec : {};
    const out: string[] = [];
    for (const field of ["minVersion", "maxVersion"]) {
        const v = str(spec[field])?.trim();
        if (v !== undefined && Object.hasOwn(OLD_TLS, v)) {
            out.push(field === "minVersion" ? `sets minVersion ${v}, so clients may speak ${OLD_TLS[v]}` : `sets maxVersion ${v}, so no client speaks more than ${OLD_TLS[v]}`);
        }
    }
    const weak = arr(spec.cipherSuites).map(str).filter((c): c is string => c !== undefined && !STRONG_CIPHER_SUITES.includes(c.trim().toUpperCase()));
    if (weak.length) out.push(`allows the weak cipher suite${weak.length > 1 ? "s" : ""} ${weak.join(", ")} (cipherSuites: CBC, RSA key exchange, 3DES or RC4)`);
    return out;
}

const NGINX_CONF = /^\/etc\/nginx\/(nginx\.conf|conf\.d\/.+\.conf|sites-enabled\/.+)$/;

/** Problems of a Docker nginx edge container: its uploaded configuration must serve HTTPS only. */
export function dockerEdgeProblems(props: Record<string, any>): string[] {
    const confs: Array<{ file: string; text?: string }> = [];
    const problems: string[] = [];
    for (const u of arr(props.uploads)) {
        if (!isRecord(u)) continue;
        const file = str(u.file);
        if (!file || !NGINX_CONF.test(file)) continue;
        let text = str(u.content) ?? (str(u.contentBase64) !== undefined ? decodeBase64(u.contentBase64) : undefined);
        const unknown = isUnknown(u.content) || isUnknown(u.contentBase64) || isUnknown(u.source);
        const source = str(u.source);
        if (text === undefined && source !== undefined) {
            // A configuration uploaded from a file (`source`) is judged as one given as content.
            const read = readProgramFile(source);
            if ("why" in read) problems.push(`uploads ${file} from source "${source}", which cannot be read where the policies run (${read.why}), so it goes unchecked; give its text as the upload's content`);
            else text = read.text;
        }
        confs.push({ file, text: unknown ? undefined : text });
    }
    if (confs.length === 0) {
        return ["uploads no nginx configuration (/etc/nginx/nginx.conf), so the image's default plain-HTTP server would be used"];
    }
    const known = confs.filter((c) => c.text !== undefined);
    if (known.length === 0) return problems; // computed during preview (checked at update), or unreadable (said above)
    // conf.d snippets are included by nginx.conf: judge all server blocks together.
    const all = known.map((c) => c.text).join("\n");
    for (const p of nginxTlsProblems(all)) problems.push(`${known.map((c) => c.file).join(" + ")}: ${p}`);
    return problems;
}

/** Problems of a Kubernetes Ingress: TLS for every host and a forced HTTPS redirect. */
export function ingressProblems(props: Record<string, any>): string[] {
    const problems: string[] = [];
    const tls = arr(props.spec?.tls).filter(isRecord);
    if (tls.length === 0) {
        problems.push("has no spec.tls, so it serves plain HTTP");
    } else {
        const tlsHosts = new Set(tls.flatMap((t) => arr(t.hosts).map((h) => str(h)).filter((h): h is string => !!h)));
        const wildcardAll = tls.some((t) => arr(t.hosts).length === 0);
        const uncovered = arr(props.spec?.rules)
            .map((r) => (isRecord(r) ? str(r.host) : undefined))
            .filter((h): h is string => !!h && !wildcardAll && !tlsHosts.has(h) && !tlsHosts.has(`*.${h.split(".").slice(1).join(".")}`));
        if (uncovered.length) problems.push(`has rules for ${uncovered.join(", ")} not covered by spec.tls hosts`);
    }
    const ann = metadataAnnotations(props);
    const redirect = ann["nginx.ingress.kubernetes.io/ssl-redirect"];
    const force = ann["nginx.ingress.kubernetes.io/force-ssl-redirect"];
    if (redirect !== "true" && force !== "true") {
        problems.push("does not set the annotation nginx.ingress.kubernetes.io/ssl-redirect (or force-ssl-redirect) to \"true\"");
    }
    return problems;
}

/**
 * HTTPS to an Ingress's backend is verified. The platform's Ingress speaks plain HTTP to ClusterIP
 * Services selecting its own pods (traffic inside the cluster, fenced by NetworkPolicies), which the
 * pack accepts: backend TLS is not required. But an Ingress that asks for TLS to its backend
 * (`backend-protocol: HTTPS` or `GRPCS`) relies on it, and ingress-nginx does not check the backend's
 * certificate unless told to: `proxy-ssl-verify: "on"`, with the CA in `proxy-ssl-secret` (without the
 * Secret the controller drops every proxy-ssl annotation). Unverified, whoever answers at the backend's
 * address (a hand-made Endpoints, a pod that took the IP) gets the traffic, the users' tokens with it,
 * while the configuration reads as encrypted end to end.
 */
export function backendTlsProblems(props: Record<string, any>): string[] {
    const ann = metadataAnnotations(props);
    const protocol = ann["nginx.ingress.kubernetes.io/backend-protocol"]?.trim().toUpperCase();
    if (protocol !== "HTTPS" && protocol !== "GRPCS") return [];
    const missing: string[] = [];
    if (ann["nginx.ingress.kubernetes.io/proxy-ssl-verify"]?.trim().toLowerCase() !== "on") missing.push("nginx.ingress.kubernetes.io/proxy-ssl-verify is not \"on\"");
    if (!ann["nginx.ingress.kubernetes.io/proxy-ssl-secret"]?.trim()) missing.push("nginx.ingress.kubernetes.io/proxy-ssl-secret names no CA Secret");
    return missing.length ? [`speaks ${protocol} to its backends (nginx.ingress.kubernetes.io/backend-protocol) without verifying them: ${missing.join(" and ")}`] : [];
}

const message = (who: string, problem: string) =>
    `${who} ${problem}. Serve HTTPS (listen 443 ssl with ssl_certificate and ` +
    "ssl_certificate_key; Ingress spec.tls with a certificate Secret) and let plain HTTP only redirect " +
    "(`return 301 https://$host$request_uri;`, annotation nginx.ingress.kubernetes.io/ssl-redirect: \"true\").";

export const edgeTlsOnly: ResourceValidationPolicy = {
    name: "edge-tls-only",
    description:
        "The edge serves HTTPS only: the nginx container's uploaded nginx.conf has ssl server blocks and every " +
        "plain-HTTP server only redirects (return 301 https://...); each Ingress has spec.tls and an ssl-redirect annotation, and verifies " +
        "the backends it speaks HTTPS or GRPCS to (proxy-ssl-verify on, proxy-ssl-secret); no Traefik ServersTransport skips verification, " +
        "and no Traefik TLSOption allows TLS below 1.2 or a weak cipher suite.",
    severity: "high",
    configSchema: {
        properties: {
            nginxImages: { type: "array", items: { type: "string" }, default: defaults.nginxImages },
        },
    },
    validateResource: readingListItems([
        forEveryWorkload((w, args, reportViolation) => {
            const cfg = readConfig(args, defaults);
            const image = str(w.props.image);
            const isNginx = image !== undefined && cfg.nginxImages.includes(parseImageRef(image).basename);
            if (w.id.role !== "edge" && !isNginx) args.notApplicable("not the edge container");
            for (const p of dockerEdgeProblems(w.props)) reportViolation(message(w.label, p));
        }, ["docker"]),
        // Session 51: Traefik's backend TLS (the local-k8s stack's ingress class): a transport that verifies nothing.
        (args, reportViolation) => {
            if (!SERVERS_TRANSPORT.test(args.type)) return;
            const spec = plain(args.props).spec;
            const field = spec?.insecureSkipVerify === true ? "insecureSkipVerify" : spec?.tls?.insecureSkipVerify === true ? "tls.insecureSkipVerify" : undefined;
            if (field === undefined) return;
            reportViolation(`${describe(args.type, args.name)} sets ${field}, so Traefik accepts any certificate from the backends using it: whoever answers at a backend's ` +
                "address gets the traffic. Give the backend's CA (rootCAs), or speak plain HTTP to a ClusterIP Service inside the cluster.");
        },
        // Session 54: the TLS versions and cipher suites Traefik's routers accept (a TLSOption; `default` is every router's that names none).
        (args, reportViolation) => {
            if (!TLS_OPTION.test(args.type)) return;
            const p = plain(args.props);
            const scope = objectName(p, args.name) === "default" ? "every router that names no other TLSOption" : "the routers naming it";
            for (const problem of tlsOptionProblems(p)) {
                reportViolation(`${describe(args.type, args.name)} ${problem}, for ${scope}: a client (or whoever is on its path, downgrading it) gets a ` +
                    "connection without forward secrecy or open to the padding-oracle and downgrade attacks TLS 1.2's AEAD suites closed. Leave minVersion at " +
                    "VersionTLS12 (or VersionTLS13) and list only ECDHE suites with AES-GCM or ChaCha20-Poly1305, or leave cipherSuites unset.");
            }
        },
        validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
            const p = plain(props);
            const who = describe(args.type, args.name);
            for (const problem of ingressProblems(p)) reportViolation(message(who, problem));
            for (const problem of backendTlsProblems(p)) {
                reportViolation(`${who} ${problem}, so whoever answers at a backend's address gets the traffic. Set proxy-ssl-verify: "on" and ` +
                    "proxy-ssl-secret: <namespace>/<Secret with the backend's CA in ca.crt>, or speak plain HTTP to a ClusterIP Service inside the cluster.");
            }
        }),
    ]),
};
