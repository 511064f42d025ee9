import { StackValidationPolicy } from "@pulumi/policy";
import { IDENTITY_HEADERS, isInternalPath, SECURITY_HEADERS } from "../../catalog/edge";
import { untrustedProxyRange } from "../lib/cidr";
import { controllerSettings, exactFirstList, goBool } from "../lib/controller-config";
import { controllerConfigMapOf, controllerConfigMaps, nginxControllers } from "../lib/ingress-nginx";
import { workloadOf, workloadTarget } from "../lib/rule";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { TRAEFIK_MIDDLEWARE } from "../lib/routes";
import { traefikStaticFiles } from "../lib/traefik-mounts";
import { forwardedTrustProblems, openingProblems, providerProblems, TraefikSetting, traefikFileSettings, traefikWorkloadSettings } from "../lib/traefik-static";
import { arr, hasUnknown, isRecord, str } from "../lib/values";
import { describe, K8S, metadataAnnotations, namespaceOf, objectName } from "../lib/workloads";

/**
 * Session 51 (red team round four): the edge's settings that undo what the api-gateway keeps for itself
 * (catalog/edge.ts), read on Traefik `Middleware`s (traefik.io or traefik.containo.us, any version: the
 * local-k8s stack's ingress class), Ingress annotations and the ingress-nginx controller ConfigMap:
 * - the identity headers the services trust (`x-user-id`, `x-user-role`, …): set on every request
 *   (`headers.customRequestHeaders`) or copied from an authentication server's answer (`forwardAuth.authResponseHeaders`
 *   and `authResponseHeadersRegex`, ingress-nginx's `auth-response-headers` and `global-auth-response-headers`),
 *   any case (header names are case-insensitive);
 * - the security headers on every answer, removed (`headers.customResponseHeaders` set to "", ingress-nginx's
 *   `hide-headers`);
 * - the never-proxied paths (`/internal`, `/metrics`, `/ready`, `/health`): a path rewritten onto one of them
 *   (`replacePath`, `addPrefix`, `replacePathRegex`, ingress-nginx's `rewrite-target`), or to one the client
 *   chooses (a replacement starting with a capture group, `stripPrefix`, `stripPrefixRegex`): the gateway answers
 *   its own metrics, probes and service-to-service routes to whoever reaches them.
 * - session 51b: the client address the gateway counts (rate limits, failed keys, login lockout): `X-Forwarded-For`,
 *   `X-Real-IP` or `Forwarded` set at the edge (a headers middleware, a header map), and the edge trusting a client to
 *   tell it (ingress-nginx's `use-forwarded-headers`, `enable-real-ip`, `use-proxy-protocol` with `proxy-real-ip-cidr`
 *   wider than the proxy's, default 0.0.0.0/0; Traefik's entry points' `forwardedHeaders`/`proxyProtocol` `insecure`
 *   or `trustedIPs`, in flags, environment or a `traefik.yaml`: lib/traefik-static.ts).
 * A redirect (`redirectRegex`, `redirectScheme`, `permanent-redirect`) sends the client elsewhere and requests
 * nothing; an `ipAllowList` narrows who reaches a route: neither is judged here.
 */

const IDENTITY = new Set<string>(Object.values(IDENTITY_HEADERS));
const SECURITY = new Set(Object.keys(SECURITY_HEADERS));
/** The headers that tell the gateway the client's address (the edge proxy's, trusted from its range only). */
const CLIENT_ADDRESS = new Set(["x-forwarded-for", "x-real-ip", "forwarded"]);
const AUTH_RESPONSE_HEADERS = "nginx.ingress.kubernetes.io/auth-response-headers";
const REWRITE_TARGET = "nginx.ingress.kubernetes.io/rewrite-target";
const AUTH_PROXY_SET_HEADERS = "nginx.ingress.kubernetes.io/auth-proxy-set-headers";
const CUSTOM_HEADERS = "nginx.ingress.kubernetes.io/custom-headers";

const listOf = (value: unknown): string[] => (Array.isArray(value) ? arr(value).map(str) : (str(value) ?? "").split(","))
    .filter((h): h is string => h !== undefined).map((h) => h.trim()).filter((h) => h !== "");
const plural = (what: string, names: string[]) => `${what}${names.length > 1 ? "s" : ""} ${names.join(", ")}`;


/** The identity headers a regular expression over header names matches (Go's RE2, on the canonical name: `X-User-Id`). */
function identityMatches(pattern: string | undefined): string[] {
    if (pattern === undefined || pattern.trim() === "") return [];
    let re: RegExp;
    try {
        re = new RegExp(pattern);
    } catch {
        return [];
    }
    const canonical = (h: string) => h.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
    return [...IDENTITY].filter((h) => re.test(h) || re.test(canonical(h)));
}

/** "copies the identity headers <names> (<field>), … from its authentication server's answer", from [header names, field] pairs. */
function copiedIdentity(sources: Array<[string[], string]>): string[] {
    const named = sources.map(([headers, field]) => [headers.filter((h) => IDENTITY.has(h.toLowerCase())), field] as const).filter(([h]) => h.length > 0);
    const count = named.reduce((n, [h]) => n + h.length, 0);
    return count === 0 ? [] : [`copies the identity header${count > 1 ? "s" : ""} ${named.map(([h, field]) => `${h.join(", ")} (${field})`).join(", ")} ` +
        "from its authentication server's answer into every request routed through it"];
}

/** What a path rewrite makes of the path, if it lands on a never-proxied path or one the client chooses. */
function rewriteProblem(value: string | undefined, field: string): string | undefined {
    const v = value?.trim();
    if (v === undefined || v === "") return undefined;
    if (/^\/*\$\{?\d/.test(v)) return `rewrites the path to one the client chooses (${field} ${v})`;
    // As the gateway's router reads it: percent-decoded, `.` segments and repeated slashes dropped.
    let decoded = v;
    try { decoded = decodeURIComponent(v); } catch { /* kept as written */ }
    const path = `/${decoded.split("/").filter((seg) => seg !== "" && seg !== ".").join("/")}`;
    return isInternalPath(path) ? `rewrites the path to ${v} (${field})` : undefined;
}

export function middlewareContractProblems(props: Record<string, any>): string[] {
    const spec = isRecord(props.spec) ? props.spec : {};
    const out: string[] = [];
    const requestHeaders = isRecord(spec.headers?.customRequestHeaders) ? Object.keys(spec.headers.customRequestHeaders) : [];
    const set = requestHeaders.filter((h) => IDENTITY.has(h.toLowerCase()));
    if (set.length) out.push(`sets the ${plural("identity header", set)} on every request routed through it (headers.customRequestHeaders)`);
    // "" removes a header: Traefik then forwards the address it sees.
    const address = requestHeaders.filter((h) => CLIENT_ADDRESS.has(h.toLowerCase()) && str(spec.headers.customRequestHeaders[h]) !== "");
    if (address.length) out.push(`sets the ${plural("client-address header", address)} on every request routed through it (headers.customRequestHeaders)`);
    const responseHeaders = isRecord(spec.headers?.customResponseHeaders) ? spec.headers.customResponseHeaders : {};
    const removed = Object.keys(responseHeaders).filter((h) => SECURITY.has(h.toLowerCase()) && str(responseHeaders[h]) === "");
    if (removed.length) out.push(`removes the ${plural("security header", removed)} from every answer (headers.customResponseHeaders set to "")`);
    const fa = isRecord(spec.forwardAuth) ? spec.forwardAuth : {};
    out.push(...copiedIdentity([[listOf(fa.authResponseHeaders), "forwardAuth.authResponseHeaders"], [identityMatches(str(fa.authResponseHeadersRegex)), "forwardAuth.authResponseHeadersRegex"]]));
    const rewrites = [rewriteProblem(str(spec.replacePath?.path), "replacePath.path"), rewriteProblem(str(spec.addPrefix?.prefix), "addPrefix.prefix"),
        rewriteProblem(str(spec.replacePathRegex?.replacement), "replacePathRegex.replacement")];
    if (isRecord(spec.stripPrefix)) rewrites.push("rewrites the path to one the client chooses (stripPrefix: what follows the prefix)");
    if (isRecord(spec.stripPrefixRegex)) rewrites.push("rewrites the path to one the client chooses (stripPrefixRegex: what follows the match)");
    return [...out, ...rewrites.filter((p): p is string => p !== undefined)];
}

export function ingressContractProblems(props: Record<string, any>): string[] {
    const annotations = metadataAnnotations(props);
    return [...copiedIdentity([[listOf(annotations[AUTH_RESPONSE_HEADERS]), `the annotation ${AUTH_RESPONSE_HEADERS}`]]),
        rewriteProblem(annotations[REWRITE_TARGET], `the annotation ${REWRITE_TARGET}`)].filter((p): p is string => p !== undefined);
}

/**
 * The controller ConfigMap's settings (both read by their exact names), and a header map of identity headers (any ConfigMap).
 * `asController`: whether the controller reads this ConfigMap as its configuration (session 53: the one its --configmap names,
 * when the stack declares the controller; any ConfigMap, by its keys, when it does not: the controller may be installed
 * outside the stack).
 */
export function controllerContractProblems(props: Record<string, any>, asController = true): string[] {
    const data = isRecord(props.data) ? props.data : {};
    // Session 52: `Hide-Headers` in another case reaches the controller's field too (one header), past its exact-key reading.
    const hidden = exactFirstList(props, "hide-headers").filter((h) => SECURITY.has(h.toLowerCase()));
    // A header map (ingress-nginx's proxy-set-headers, auth-proxy-set-headers: the header names are its keys), whichever object names it.
    const map = [[IDENTITY, "identity header"], [CLIENT_ADDRESS, "client-address header"]].flatMap(([names, what]) => {
        const keys = Object.keys(data).filter((k) => (names as Set<string>).has(k.toLowerCase()));
        return keys.length ? [`holds the ${plural(what as string, keys)} as ${keys.length > 1 ? "keys" : "a key"}: as ingress-nginx's proxy-set-headers ` +
            `(or auth-proxy-set-headers) map, the controller sets ${keys.length > 1 ? "them" : "it"} on every request`] : [];
    });
    if (!asController) return map;
    return [...map, ...copiedIdentity([[listOf(data["global-auth-response-headers"]), "global-auth-response-headers"]]),
        ...(hidden.length ? [`removes the ${plural("security header", hidden)} from every answer (hide-headers)`] : []), ...clientAddressTrust(props)];
}

/**
 * What Traefik's static configuration (a container's flags and environment, a file) undoes: trusted client addresses, (session 52)
 * routes the pack never reads, (session 53) Traefik's own API open to anyone, backends' certificates unverified.
 */
const traefikStaticProblems = (settings: TraefikSetting[]) => [...forwardedTrustProblems(settings), ...providerProblems(settings), ...openingProblems(settings)];

/**
 * The controller taking the client address from what a client sends: `use-forwarded-headers` (X-Forwarded-For),
 * `enable-real-ip` (its forwarded-for-header), `use-proxy-protocol` (the PROXY header), each trusted from the
 * senders in `proxy-real-ip-cidr` (default 0.0.0.0/0): refused when one is no edge proxy's range.
 */
function clientAddressTrust(props: Record<string, any>): string[] {
    const settings = controllerSettings(props);
    const listed = exactFirstList(props, "proxy-real-ip-cidr");
    const given = listed.length ? listed.join(",") : undefined;
    const wide = (given ?? "0.0.0.0/0").split(",").map((e) => e.trim()).filter((e) => e !== "" && untrustedProxyRange(e) !== undefined);
    const reasons = `${given === undefined ? "its default; " : ""}${wide.map((e) => untrustedProxyRange(e)).join("; ")}`;
    const trusting = ["use-forwarded-headers", "enable-real-ip", "use-proxy-protocol"].filter((k) => goBool(settings.get(k)) === true);
    // Session 52: without the PROXY protocol, the address comes from forwarded-for-header, which the proxy in front only vouches for when it is the X-Forwarded-For it writes.
    const header = settings.get("forwarded-for-header")?.trim() || "X-Forwarded-For";
    const passed = trusting.length && !trusting.includes("use-proxy-protocol") && header.toLowerCase() !== "x-forwarded-for"
        ? [`sets forwarded-for-header ${header} with ${trusting.join(", ")}, so the controller takes the client address from ${header}, a header the proxy in front ` +
            "passes on from the client as it came (it writes X-Forwarded-For): any client chooses its own"] : [];
    return [...(wide.length === 0 ? [] : trusting
        .map((k) => `sets ${k} with proxy-real-ip-cidr ${wide.join(", ")} (${reasons}), so the controller takes the client address from a header any client there writes`)), ...passed];
}

function fixOf(problem: string): string {
    if (problem.includes("on a public entry point")) {
        return "; keep metrics and ping on the internal entry point traefik (their default, on a port no Service publishes) or on an entry point of their " +
            "own that no Service publishes, and let Prometheus scrape it inside the cluster (or route them with manualRouting through a router the route policies read).";
    }
    if (problem.includes("its API and dashboard")) {
        return "; leave api.insecure off (and api.debug): publish the dashboard, if at all, through an IngressRoute to api@internal on a host of its own " +
            "behind an authentication middleware, or reach it with kubectl port-forward.";
    }
    if (problem.includes("accepts any certificate")) {
        return "; leave insecureSkipVerify off and give the backends' CA as serversTransport.rootCAs (or a ServersTransport with rootCAs for the Services that need one).";
    }
    if (/Traefik's (docker|swarm) provider/.test(problem)) {
        return "; no policy of this pack reads the Docker provider's routers (containers' labels, and with exposedByDefault, its default, every container " +
            "without one): keep that provider off, and on the Docker target serve the edge with the platform's nginx edge container (its nginx.conf judged by edge-tls-only).";
    }
    if (/provider/i.test(problem)) {
        return "; the edge serves only routes this pack judges (the stack's Ingresses, Traefik Middlewares and ServersTransports, read by the route policies): " +
            "enable only the kubernetesIngress and kubernetesCRD providers, each with namespaces naming the stack's, on the cluster's own API server, " +
            "and neither allowCrossNamespace nor allowExternalNameServices.";
    }
    if (/client-address|client address|X-Forwarded-For/.test(problem)) {
        return "; the api-gateway's rate limits, failed-key counts and login lockout count the client address the edge forwards: an address the edge " +
            "writes puts every client behind it in one bucket, one a client writes lets it choose its own. Let the edge forward the address it sees, and trust " +
            "forwarded addresses from the edge proxy's own range only.";
    }
    if (problem.includes("identity header")) {
        return "; the api-gateway writes the identity headers from a verified credential and strips any that arrive: a service reached past it, " +
            "or a gateway bypassed by another route, takes them for the verified caller. Set no identity header at the edge.";
    }
    if (problem.includes("security header")) return "; the api-gateway answers with them (HSTS, nosniff, frame and referrer policies) and the edge keeps them. Remove nothing.";
    return "; the api-gateway's own /internal, /metrics, /ready and /health (its metrics, probes and service-to-service routes) are never routed " +
        "to clients: rewrite onto none of them, and let no client choose the rewritten path.";
}

/**
 * Session 51b: the header maps ingress-nginx is told to set (the controller's `proxy-set-headers`, an Ingress's
 * `auth-proxy-set-headers`: `<namespace>/<name>`, a name alone in the object's namespace), followed within the stack:
 * a map the stack does not declare is reported, as the pack cannot see what it sets (a declared one is judged by its keys).
 * Session 52: and the maps of headers it adds to every answer (the controller's `add-headers`, an Ingress's `custom-headers`):
 * one the stack does not declare is reported the same way, a declared one setting a security header to another value than
 * the gateway's (a second X-Frame-Options voids it, the last Referrer-Policy wins) too.
 */
export function undeclaredHeaderMaps(resources: StackResource[], isController: (r: StackResource) => boolean = () => true): Finding[] {
    const maps = new Map(resources.filter((r) => r.type === K8S.configMap).map((r) => [`${namespaceOf(r.props)}/${objectName(r.props, r.name)}`, r]));
    const out: Finding[] = [];
    for (const r of resources) {
        const settings = r.type === K8S.configMap && isController(r) ? controllerSettings(r.props) : undefined;
        const annotations = r.type === K8S.ingress ? metadataAnnotations(r.props) : {};
        const refs: Array<[string, string | undefined, boolean]> = settings ? [["proxy-set-headers", settings.get("proxy-set-headers"), false], ["add-headers", settings.get("add-headers"), true]]
            : r.type === K8S.ingress ? [[`the annotation ${AUTH_PROXY_SET_HEADERS}`, annotations[AUTH_PROXY_SET_HEADERS], false], [`the annotation ${CUSTOM_HEADERS}`, annotations[CUSTOM_HEADERS], true]] : [];
        const who = describe(r.type, r.name);
        for (const [key, value, answers] of refs) {
            const ref = value?.trim();
            if (ref === undefined || ref === "" || hasUnknown(ref)) continue;
            const map = maps.get(ref.includes("/") ? ref : `${namespaceOf(r.props)}/${ref}`);
            if (map === undefined) {
                out.push({ urn: r.urn, message: `${who} sets ${key} to ${ref}, a ConfigMap this stack does not declare: the controller ${answers ? "adds each of its keys as a header to every answer" : "sets each of its keys as a header on every request"}, ` +
                    `and no policy can see which (${answers ? "security headers, CORS" : "identity headers, X-Forwarded-For"}). Declare the header map in the stack, where its keys are judged.` });
            } else if (answers) {
                const data = isRecord(map.props.data) ? map.props.data : {};
                const weak = Object.keys(data).filter((h) => SECURITY.has(h.toLowerCase()) && str(data[h])?.trim().toLowerCase() !== SECURITY_HEADERS[h.toLowerCase()].toLowerCase());
                if (weak.length) {
                    out.push({ urn: map.urn, message: `ConfigMap "${map.name}" (the header map ${who} names by ${key}) adds ${weak.map((h) => `${h}: ${str(data[h]) ?? "?"}`).join(", ")} to every answer beside ` +
                        "the gateway's own (a second X-Frame-Options voids it, the last Referrer-Policy wins, HSTS and nosniff are the gateway's to set): add no security header at the edge." });
                }
            }
        }
    }
    return out;
}

const WATCH_FIX = "; the edge serves only Ingresses this pack judges: give each ingress-nginx controller --watch-namespace naming the namespaces of this " +
    "stack's Ingresses, and --configmap naming a ConfigMap this stack declares.";

/**
 * Session 53: what an ingress-nginx controller of the stack serves and reads. Refused: no --watch-namespace (nor a selector), so it
 * serves the Ingresses of every namespace, written by anyone allowed to there and judged by no policy (as Traefik's providers without
 * `namespaces`); a --watch-namespace naming a namespace where this stack declares no Ingress (it serves that namespace's, and when it
 * leaves the stack's own unserved the message says so; the stack's Ingresses unserved alone is an outage the e2e suites see, not a hole);
 * a --configmap naming a ConfigMap the stack does not declare (its snippets, trusted addresses and header maps go unread).
 */
export function nginxControllerFindings(resources: StackResource[]): Finding[] {
    const ingressNamespaces = [...new Set(resources.filter((r) => r.type === K8S.ingress).map((r) => namespaceOf(r.props)))];
    const out: Finding[] = [];
    for (const c of nginxControllers(resources)) {
        if (c.watched === "all") {
            out.push({ urn: c.urn, message: `${c.who} runs the ingress-nginx controller without --watch-namespace, so it serves the Ingresses of every namespace, ` +
                `made by anyone who may write an Ingress there, past the policies that judge this stack's own${WATCH_FIX}` });
        } else if (c.watched !== "unresolved") {
            const foreign = c.watched.filter((n) => !ingressNamespaces.includes(n));
            const unserved = ingressNamespaces.filter((n) => !(c.watched as string[]).includes(n));
            if (foreign.length) {
                out.push({ urn: c.urn, message: `${c.who} sets ${c.watchFlag}, so the controller serves the Ingresses of namespace${foreign.length > 1 ? "s" : ""} ` +
                    `${foreign.join(", ")}, where this stack declares none: whoever may write an Ingress there publishes routes no policy of this pack judges` +
                    `${unserved.length ? `, while this stack's Ingresses in ${unserved.join(", ")} go unserved` : ""}${WATCH_FIX}` });
            }
        }
        const ref = c.configMap;
        if (ref?.named && controllerConfigMapOf(c, resources) === undefined) {
            out.push({ urn: c.urn, message: `${c.who} reads its settings from ConfigMap ${ref.namespace}/${ref.name} (--configmap), which this stack does not declare, so no ` +
                "policy sees whether it turns snippets back on, trusts forwarded client addresses or sets identity headers; declare the controller's ConfigMap in the stack." });
        }
    }
    return out;
}

export const edgeGatewayContract: StackValidationPolicy = {
    name: "edge-gateway-contract",
    description:
        "The edge keeps what the api-gateway keeps for itself: no Traefik Middleware, Ingress annotation or ingress-nginx controller setting writes " +
        "or copies the identity headers the services trust (x-user-id, x-user-role, x-auth-method, x-api-key-id, x-api-key-scopes), removes the " +
        "security headers the gateway answers with, or rewrites a request onto /internal, /metrics, /ready or /health (or to a path the client chooses); none sets " +
        "X-Forwarded-For, X-Real-IP or Forwarded, or trusts a client to tell its address (use-forwarded-headers, enable-real-ip, Traefik's forwardedHeaders); " +
        "Traefik serves only routes the pack reads (kubernetesIngress and kubernetesCRD providers with namespaces, without allowCrossNamespace or allowExternalNameServices), " +
        "serves no API or dashboard without authentication (api.insecure), no metrics or ping on an entry point serving clients, and verifies its backends' certificates (serversTransport.insecureSkipVerify), on Kubernetes and on Docker; " +
        "an ingress-nginx controller the stack declares serves only the namespaces of its Ingresses (--watch-namespace) and reads a ConfigMap it declares (--configmap).",
    severity: "critical",
    // Session 51b: a stack policy, to follow the header maps' references (undeclaredHeaderMaps); every object is judged alone as before.
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const isController = controllerConfigMaps(resources);
        for (const r of resources) {
            const problems = TRAEFIK_MIDDLEWARE.test(r.type) ? middlewareContractProblems(r.props).map((p) => `${describe(r.type, r.name)} ${p}`)
                : r.type === K8S.ingress ? ingressContractProblems(r.props).map((p) => `Ingress "${r.name}" ${p}`)
                    : r.type === K8S.configMap ? controllerContractProblems(r.props, isController(r)).map((p) => `ConfigMap "${r.name}" ${p}`)
                        // Traefik's static configuration (flags, environment); session 54: a Docker container running Traefik too.
                        : workloadTarget(r.type) !== undefined ? (() => {
                            const w = workloadOf(workloadTarget(r.type)!, r.type, r.name, r.props);
                            return traefikStaticProblems(traefikWorkloadSettings(w)).map((p) => `${w.label} ${p}`);
                        })() : [];
            for (const p of problems) reportViolation(`${p}${fixOf(p)}`, r.urn);
        }
        // Session 52: a Traefik file only where a Traefik container reads it as its static configuration (lib/traefik-mounts.ts).
        for (const { source, view } of traefikStaticFiles(resources).files) {
            for (const p of traefikStaticProblems(traefikFileSettings(view)).map((x) => `${describe(source.type, source.name)} ${x}`)) reportViolation(`${p}${fixOf(p)}`, source.urn);
        }
        for (const f of undeclaredHeaderMaps(resources, isController)) reportViolation(f.message, f.urn);
        for (const f of nginxControllerFindings(resources)) reportViolation(f.message, f.urn);
    },
};
