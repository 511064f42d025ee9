/**
 * Session 51b: Traefik's static configuration (pure), read wherever it is given: a container's flags
 * (`--entryPoints.web.forwardedHeaders.insecure`, any case, as Traefik reads them; `=value`, the next word, or
 * none for a boolean), its environment (`TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_INSECURE`), and a file: a
 * ConfigMap holding `traefik.yaml`/`traefik.yml` (mounted into the pod, named by `--configFile`), read with the
 * `yaml` library, or (session 52) `traefik.toml`, read with `smol-toml` (Traefik decodes a file by its extension,
 * in any case, and matches its keys in any case); session 52: only the files a Traefik container reads as its static
 * configuration (lib/traefik-mounts.ts), not any ConfigMap's. Every setting comes as its lower-case dotted key, so one rule
 * judges all three. A file that does not parse is reported as unread (`unreadTraefikFiles`): the pack judges
 * nothing in it, and whether Traefik's own parser refuses it too is not the pack's to assume.
 */
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { k8sCommandLine } from "./command-line";
import { goBool } from "./controller-config";
import { untrustedProxyRange } from "./cidr";
import { workloadEnv } from "./environment";
import { dockerProcessWords, isTraefikDockerContainer } from "./traefik-mounts";
import type { Workload } from "./rule";
import { isRecord, str } from "./values";

export interface TraefikSetting {
    /** Lower-case, dotted: `entrypoints.web.forwardedheaders.insecure`. */
    key: string;
    /** As the message names it: `--entrypoints.web.forwardedheaders.insecure`, `TRAEFIK_…`, `tracing.otlp.http.endpoint (traefik.yaml)`. */
    setting: string;
    /** The value; undefined for a flag given without one (a boolean set true). */
    value: string | undefined;
    /** Where it is set, for a workload: `container "traefik"`; "" for a ConfigMap's file. */
    where: string;
    /** The one configuration it belongs to: the container (`container "traefik"`) or the file (`traefik.yaml`). */
    source: string;
}

/** Each `--flag[=value]` of a command line as a setting (a flag without `=` takes the next word unless it is another flag). */
function flagSettings(words: string[], where: string, source: string): TraefikSetting[] {
    const out: TraefikSetting[] = [];
    words.forEach((word, i) => {
        if (!word.startsWith("--") || word.length < 3) return;
        const [name, ...rest] = word.split("=");
        const next = words[i + 1];
        const value = rest.length ? rest.join("=") : next !== undefined && !next.startsWith("-") ? next : undefined;
        out.push({ key: name.slice(2).toLowerCase(), setting: name.toLowerCase(), value, where, source });
    });
    return out;
}

/**
 * The static settings of any Kubernetes container of a workload: its flags and its `TRAEFIK_*` environment. Session 54: and
 * of a Docker container running Traefik (`isTraefikDockerContainer`): its `entrypoints` and `command` flags and its `envs`
 * (the message's subject names the container; `where` says `command` or `envs`). Its `labels` are the Docker provider's
 * dynamic configuration (routers), not static settings: that provider is `providerProblems`'.
 */
export function traefikWorkloadSettings(w: Workload): TraefikSetting[] {
    if (w.target === "docker") {
        if (!isTraefikDockerContainer(w.props)) return [];
        const envs = workloadEnv(w.type, w.props).flatMap((env) => env.entries)
            .filter((e) => /^TRAEFIK_./i.test(e.name) && e.value !== undefined)
            .map((e): TraefikSetting => ({ key: e.name.slice(8).toLowerCase().replace(/_/g, "."), setting: e.name, value: e.value, where: "envs", source: "the container" }));
        return [...flagSettings(dockerProcessWords(w.props), "command", "the container"), ...envs];
    }
    const out: TraefikSetting[] = [];
    for (const c of w.containers) {
        out.push(...flagSettings(k8sCommandLine(c).flatMap((e) => e.text.trim().split(/\s+/)), `container "${c.name}"`, `container "${c.name}"`));
    }
    for (const env of workloadEnv(w.type, w.props)) {
        for (const e of env.entries) {
            if (!/^TRAEFIK_./i.test(e.name) || e.value === undefined) continue;
            const where = `container "${env.container?.name ?? w.name}"`;
            out.push({ key: e.name.slice(8).toLowerCase().replace(/_/g, "."), setting: e.name, value: e.value, where, source: where });
        }
    }
    return out;
}

/** A Traefik file's document, parsed as its extension says (as Traefik decodes it), or why it does not parse (the parser's first line). */
function parseTraefikFile(file: string, text: string): { doc: unknown } | { error: string } {
    const ext = /\.(toml|ya?ml)$/i.exec(file)?.[1].toLowerCase();
    if (ext === undefined) return { error: "Traefik reads a .toml, .yaml or .yml file only" };
    try {
        return { doc: ext === "toml" ? parseToml(text) : parseYaml(text) };
    } catch (e) {
        return { error: String(e instanceof Error ? e.message : e).split("\n")[0] };
    }
}

/** The files of a Traefik static configuration view (lib/traefik-mounts.ts: the files a Traefik container reads, by their names), each [file, text]. */
function traefikFiles(view: Record<string, any>): Array<[string, string]> {
    const data = isRecord(view.data) ? view.data : {};
    return Object.entries(data).filter(([, text]) => str(text) !== undefined).map(([file, text]) => [file, text as string]);
}

/** The settings of each file of a static configuration view (YAML or TOML; one that does not parse gives none: `unreadTraefikFiles`). */
export function traefikFileSettings(view: Record<string, any>): TraefikSetting[] {
    const out: TraefikSetting[] = [];
    for (const [file, text] of traefikFiles(view)) {
        const parsed = parseTraefikFile(file, text);
        if ("error" in parsed) continue;
        const add = (path: string[], value: string) => out.push({ key: path.join(".").toLowerCase(), setting: `${path.join(".")} (${file})`, value, where: "", source: file });
        const walk = (node: unknown, path: string[]) => {
            if (Array.isArray(node) && node.every((v) => !isRecord(v) && !Array.isArray(v))) {
                add(path, node.map(String).join(","));
            } else if (Array.isArray(node)) {
                node.forEach((v, i) => walk(v, [...path, String(i)]));
            } else if (isRecord(node) && !(node instanceof Date) && Object.keys(node).length > 0) {
                for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
            } else if (path.length > 0) {
                // An empty table or a key without a value (`kubernetesCRD: {}`, `[providers.file]`) is set all the same: it enables what it names.
                add(path, node === null || node === undefined || isRecord(node) && !(node instanceof Date) ? "" : String(node));
            }
        };
        walk(parsed.doc, []);
    }
    return out;
}

/** The files of a static configuration view the pack cannot read (they do not parse as their extension says), each [file, the parser's reason]. */
export function unreadTraefikFiles(view: Record<string, any>): Array<[string, string]> {
    return traefikFiles(view).flatMap(([file, text]) => {
        const parsed = parseTraefikFile(file, text);
        return "error" in parsed ? [[file, parsed.error] as [string, string]] : [];
    });
}

/**
 * Traefik's tracing endpoints among the settings (`tracing.<…>.endpoint`, `…hostport`, `…address`), each
 * [setting, value, where]; a flag given without a value names none.
 */
export function tracingEndpoints(settings: TraefikSetting[]): Array<[string, string, string]> {
    return settings.filter((s) => /^tracing\.[a-z0-9.]*(endpoint|hostport|address)$/.test(s.key) && s.value !== undefined && s.value.trim() !== "")
        .map((s) => [s.setting, s.value!, s.where]);
}

/**
 * Session 51b: entry points that take the client address from what the client sends: `forwardedHeaders.insecure`
 * or `proxyProtocol.insecure` (any sender), or `trustedIPs` holding a range no edge proxy sends from (a public one,
 * one wider than the proxy's: catalog/addresses.ts). Each a problem, "sets …, so Traefik takes …".
 */
export function forwardedTrustProblems(settings: TraefikSetting[]): string[] {
    const out: string[] = [];
    for (const s of settings) {
        const m = /^entrypoints\.[^.]+\.(forwardedheaders|proxyprotocol)\.(insecure|trustedips)$/.exec(s.key);
        if (!m) continue;
        const at = s.where === "" ? "" : `${s.where} `;
        const what = m[1] === "forwardedheaders" ? "X-Forwarded-For (and the other X-Forwarded-* headers)" : "the client address in a PROXY protocol header";
        if (m[2] === "insecure" && goBool(s.value ?? "true")) out.push(`${at}sets ${s.setting}, so Traefik takes ${what} from any client`);
        const wide = m[2] === "trustedips" ? (s.value ?? "").split(",").map((e) => e.trim()).filter((e) => e !== "" && untrustedProxyRange(e) !== undefined) : [];
        if (wide.length) out.push(`${at}sets ${s.setting} to ${wide.join(", ")} (${wide.map((e) => untrustedProxyRange(e)).join("; ")}), so Traefik takes ${what} from clients there`);
    }
    return out;
}

/** The providers whose routes are objects the route policies read (Ingresses; Traefik's Middlewares and ServersTransports), by lower-case name, with the option naming the namespaces each watches. */
const READ_PROVIDERS = new Map([["kubernetesingress", "namespaces"], ["kubernetescrd", "namespaces"], ["kubernetesingressnginx", "watchnamespace"]]);
/** Provider options that widen what a Kubernetes provider serves, each with what follows. */
const WIDENING: ReadonlyArray<[RegExp, string]> = [
    [/^allowcrossnamespace$/, "so an IngressRoute, Middleware or TraefikService of one namespace may name a Service or Middleware of another (a datastore's, monitoring's), which no route policy follows"],
    [/^allowexternalnameservices$/, "so Traefik routes to ExternalName Services, DNS aliases to any host inside or outside the cluster (CVE-2021-25740's hole), which ingress-internal-backends refuses as routes"],
];

/**
 * Session 52: Traefik's providers, each configuration (a container's flags and environment, a file) on its own. The edge
 * serves only routes the pack reads: a provider other than the Kubernetes Ingress and CRD ones (file, http, rest, docker,
 * consul, etcd, redis, the Gateway API, a plugin, …) publishes routes from a source no policy reads; a Kubernetes one
 * reading another API server (`endpoint`), watching every namespace (no `namespaces`), or widened by `allowCrossNamespace`
 * or `allowExternalNameServices` serves objects the stack does not declare or routes the route policies refuse.
 * `allowEmptyServices` (a 503 instead of no route), `labelSelector` and `ingressClass` only change or narrow what is served.
 */
export function providerProblems(settings: TraefikSetting[]): string[] {
    const out: string[] = [];
    for (const source of new Set(settings.map((s) => s.source))) {
        const providers = new Map<string, TraefikSetting[]>();
        for (const s of settings.filter((x) => x.source === source)) {
            const m = /^providers\.([^.[]+)/.exec(s.key);
            if (m && m[1] !== "providersthrottleduration") providers.set(m[1], [...(providers.get(m[1]) ?? []), s]);
        }
        for (const [name, given] of providers) {
            if (given.some((s) => s.key === `providers.${name}` && goBool(s.value ?? "true") === false)) continue;
            const at = given[0].where === "" ? "" : `${given[0].where} `;
            const option = (o: string) => given.find((s) => s.key.replace(/\[\d+\]$/, "") === `providers.${name}.${o}`);
            const watched = READ_PROVIDERS.get(name);
            if (watched === undefined) {
                // Session 54: the Docker (and Swarm) provider routes every container of the engine unless exposedByDefault is set false.
                const exposed = name === "docker" || name === "swarm" ? option("exposedbydefault") : undefined;
                if ((name === "docker" || name === "swarm") && goBool(exposed?.value ?? "true") !== false) {
                    out.push(`${at}enables Traefik's ${name} provider (${given[0].setting}) with ${exposed ? `${exposed.setting} ${exposed.value ?? "true"}` : "exposedByDefault left at its default, true"}, ` +
                        "so Traefik makes a router for every container of the engine, the datastores' and monitoring's included, made in this stack or not, " +
                        "from labels and names no policy of this pack reads");
                    continue;
                }
                out.push(`${at}enables Traefik's ${name} provider (${given[0].setting}), whose routers, services and middlewares come from a source no policy of this pack reads`);
                continue;
            }
            const endpoint = option("endpoint");
            if (endpoint?.value) out.push(`${at}sets ${endpoint.setting} to ${endpoint.value}, so Traefik serves the routes of that API server, whose objects no policy of this pack sees`);
            const namespaces = option(watched);
            if ((namespaces?.value ?? "").trim() === "" && option(`${watched}selector`) === undefined) {
                out.push(`${at}enables Traefik's ${name} provider (${given[0].setting}) without ${watched}, so Traefik serves the routes of every namespace, ` +
                    "made by anyone who may write an Ingress or a Middleware there, past the policies that judge this stack's own");
            }
            for (const [option_, what] of WIDENING) {
                const s = given.find((x) => option_.test(x.key.slice(`providers.${name}.`.length)) && goBool(x.value ?? "true") === true);
                if (s) out.push(`${at}sets ${s.setting}, ${what}`);
            }
        }
    }
    return out;
}

/**
 * Session 53: static settings that open Traefik itself, each configuration (a container's flags and environment, a file)
 * on its own: `api.insecure` serves the API and dashboard on the entry point `traefik` (`:8080` unless moved), every
 * address of the pod, with no router in front and so no authentication (with `api.debug`, Go's profiler and runtime
 * variables too); `serversTransport.insecureSkipVerify` makes Traefik accept any certificate from every backend it reaches
 * over HTTPS (edge-tls-only judges the same on a `ServersTransport` object; this is the default every route takes).
 * `api.dashboard`/`api` alone serve nothing until a router names `api@internal`, which the route policies read.
 */
export function openingProblems(settings: TraefikSetting[]): string[] {
    const out: string[] = [];
    const isOn = (s: TraefikSetting) => goBool(s.value ?? "true") === true;
    for (const source of new Set(settings.map((s) => s.source))) {
        const given = settings.filter((s) => s.source === source);
        const insecure = given.find((s) => s.key === "api.insecure" && isOn(s));
        if (insecure) {
            const debug = given.some((s) => s.key === "api.debug" && isOn(s));
            const at = insecure.where === "" ? "" : `${insecure.where} `;
            out.push(`${at}sets ${insecure.setting}, so Traefik serves its API and dashboard without authentication on its entry point traefik (port 8080 unless ` +
                "entryPoints.traefik.address moves it), on every address of the pod: whoever reaches that port (any pod of the cluster, or everyone if a Service " +
                `publishes it) reads every router, service and middleware, the backends' addresses and the rules in front of them${debug ? ", and, with api.debug, Go's profiler and runtime variables" : ""}`);
        }
        for (const s of given.filter((x) => /^serverstransport\.insecureskipverify$/.test(x.key) && isOn(x))) {
            const at = s.where === "" ? "" : `${s.where} `;
            out.push(`${at}sets ${s.setting}, so Traefik accepts any certificate from every backend it reaches over HTTPS: whoever is on the path between the edge ` +
                "and a backend answers in its place, reading and rewriting every request, the credentials it carries included");
        }
        out.push(...internalEndpointProblems(given));
    }
    return out;
}

/** Ports clients reach an edge on: an entry point listening there serves them. */
const PUBLIC_PORTS = ["80", "443"];

/**
 * Session 54: why an entry point of one configuration serves clients, or undefined: `web` and `websecure` (the names Traefik's
 * chart and this repository's cluster give the published ones), an entry point terminating TLS for routers (`http.tls`) or
 * redirecting them (`http.redirections`), one marked `asDefault` (every router without entry points of its own listens there),
 * or one listening on port 80 or 443.
 */
function publicEntryPoint(given: TraefikSetting[], name: string): string | undefined {
    const lower = name.toLowerCase();
    const of = (suffix: string) => given.filter((s) => s.key === `entrypoints.${lower}.${suffix}` || s.key.startsWith(`entrypoints.${lower}.${suffix}.`));
    if (lower === "web" || lower === "websecure") return "the name Traefik's chart gives the entry point it publishes";
    if (of("http.tls").length) return "it terminates TLS for routers (http.tls)";
    if (of("http.redirections").length) return "it redirects routers' requests (http.redirections)";
    if (of("asdefault").some((s) => goBool(s.value ?? "true") === true)) return "every router without entry points of its own listens there (asDefault)";
    const port = /:(\d+)(\/(tcp|udp))?$/i.exec(of("address")[0]?.value?.trim() ?? "")?.[1];
    return port !== undefined && PUBLIC_PORTS.includes(port) ? `it listens on port ${port}` : undefined;
}

/**
 * Session 54: Traefik's own endpoints on an entry point that serves clients: Prometheus metrics (`metrics.prometheus.entryPoint`:
 * every router's, service's and entry point's request counts and latencies, which names the routes and backends) and the ping
 * health check (`ping.entryPoint`: the edge answering to any prober). Both default to the internal entry point `traefik`; with
 * `manualRouting` they are served only through a router the route policies read. Each configuration judged on its own.
 */
function internalEndpointProblems(given: TraefikSetting[]): string[] {
    const out: string[] = [];
    const endpoints: Array<[string, string]> = [
        ["metrics.prometheus", "its Prometheus metrics (every router's, service's and entry point's request counts and latencies, naming the routes and backends)"],
        ["ping", "its ping health check"],
    ];
    for (const [root, what] of endpoints) {
        const entry = given.filter((s) => s.key === `${root}.entrypoint`).pop();
        if (entry === undefined || (entry.value ?? "").trim() === "") continue;
        if (given.some((s) => s.key === `${root}.manualrouting` && goBool(s.value ?? "true") === true)) continue;
        if (given.some((s) => s.key === root && goBool(s.value ?? "true") === false)) continue;
        const name = entry.value!.trim();
        const why = publicEntryPoint(given, name);
        if (why === undefined) continue;
        const at = entry.where === "" ? "" : `${entry.where} `;
        out.push(`${at}sets ${entry.setting} to ${name}, so Traefik answers ${what} on a public entry point (${name}: ${why}), to every client that reaches the edge`);
    }
    // The internal entry point itself moved onto a public port: metrics and ping are served there unless given another entry point.
    const traefik = publicEntryPoint(given, "traefik");
    const address = given.filter((s) => s.key === "entrypoints.traefik.address").pop();
    const served = endpoints.filter(([root]) => given.some((s) => (s.key === root || s.key.startsWith(`${root}.`)) && goBool(s.value ?? "true") !== false) &&
        !given.some((s) => s.key === `${root}.entrypoint` || (s.key === `${root}.manualrouting` && goBool(s.value ?? "true") === true)));
    if (traefik !== undefined && address !== undefined && served.length) {
        const at = address.where === "" ? "" : `${address.where} `;
        out.push(`${at}sets ${address.setting} to ${address.value}, so Traefik answers ${served.map(([, what]) => what).join(" and ")} on a public entry point ` +
            `(traefik: ${traefik}), to every client that reaches the edge`);
    }
    return out;
}
