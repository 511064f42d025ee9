/**
 * Session 52: which files the stack's Traefik workloads read as their static configuration (pure). A ConfigMap holding a
 * file named `traefik.yaml` is Traefik's static configuration only when a Traefik container reads it: Traefik loads the
 * file its `--configFile` flag names (any case; a relative path from the container's working directory), else the first
 * of `traefik.toml`, `traefik.yaml`, `traefik.yml` in `/etc/traefik`, `$XDG_CONFIG_HOME`, `$HOME/.config` and its working
 * directory. Each such path is read as the container sees it (lib/files.ts: a ConfigMap's or Secret's key mounted there,
 * a subPath, `items`). A Traefik container is one whose image is Traefik's (its repository's last segment names
 * traefik: `traefik`, `rancher/mirrored-library-traefik`), whose command is `traefik`, or (session 53) whose command line
 * or environment carries Traefik's own static flags (`isTraefikContainer`).
 */
import * as posix from "path/posix";
import { parseImageRef } from "../../catalog/images";
import { k8sCommandLine } from "./command-line";
import { workloadFile } from "./files";
import { workloadOf } from "./rule";
import type { StackResource } from "./stack";
import { arr, isRecord, str } from "./values";
import { describe, DOCKER_CONTAINER, isK8sWorkload, K8sContainer } from "./workloads";

/** A ConfigMap (or Secret) the stack's Traefik reads its static configuration from, and a view of it holding those files only, by the names Traefik reads them under. */
export interface TraefikStaticFile {
    source: StackResource;
    view: Record<string, any>;
}

/** A Traefik container whose static configuration file the pack cannot read: the workload's URN, and the message's subject and cause. */
export interface UnseenStaticFile {
    urn: string;
    who: string;
    unseen: string;
}

const NAMES = ["traefik.toml", "traefik.yaml", "traefik.yml"];

/**
 * Traefik's own static flags and variables (session 53): a root no other program's flags share (`--entryPoints.web.address`,
 * `--providers.kubernetesCRD`, `--certificatesResolvers.le.acme.email`, `--serversTransport.rootCAs`, `--api.insecure`;
 * `TRAEFIK_ENTRYPOINTS_…`, `TRAEFIK_PROVIDERS_…`), any case as Traefik reads them. `--log.level`, `--metrics.*` or
 * `--configFile` alone say nothing: Prometheus and others take them too.
 */
const TRAEFIK_FLAG = /^--(entrypoints|providers|certificatesresolvers|serverstransports?|api)\.[a-z]/i;
const TRAEFIK_VARIABLE = /^TRAEFIK_(ENTRYPOINTS|PROVIDERS|CERTIFICATESRESOLVERS|SERVERSTRANSPORTS?|API)_/i;

/**
 * Whether a Kubernetes container runs Traefik: by its image's repository, or (session 53: an image given by ID, or by a
 * digest of a repository whose name says nothing, `registry.example.com/edge/proxy@sha256:…`) by its command line's shape:
 * `traefik` as the command (or as the first argument an entrypoint script passes on), or a Traefik static flag or variable.
 */
export function isTraefikContainer(c: K8sContainer): boolean {
    const words = k8sCommandLine(c).flatMap((e) => e.text.trim().split(/\s+/));
    return isTraefikProcess(str(c.container.image), words, arr(c.container.env).map((e) => (isRecord(e) ? str(e.name) ?? "" : "")));
}

/** Session 54: the same recognition on a process's image, command line (entrypoint and command, in order) and environment names. */
function isTraefikProcess(image: string | undefined, words: string[], envNames: string[]): boolean {
    if (image !== undefined && !parseImageRef(image).isImageId && /traefik/i.test(parseImageRef(image).basename)) return true;
    if (words.slice(0, 2).some((w) => /(^|\/)traefik$/.test(w))) return true;
    if (words.some((w) => TRAEFIK_FLAG.test(w))) return true;
    return envNames.some((n) => TRAEFIK_VARIABLE.test(n));
}

/**
 * Session 54: a Docker container running Traefik (the Docker target), recognised as a Kubernetes one is: its image's name,
 * `traefik` as its entrypoint or command (or the first argument an entrypoint script passes on), a Traefik static flag on
 * its command line or a `TRAEFIK_` variable of its `envs`. Its health check (`traefik healthcheck`) is another process.
 */
export function isTraefikDockerContainer(props: Record<string, any>): boolean {
    const words = dockerProcessWords(props);
    const envNames = arr(props.envs).map((e) => str(e)?.split("=")[0] ?? "");
    return isTraefikProcess(str(props.image), words, envNames);
}

/** A Docker container's process command line, word by word: its `entrypoints`, then its `command` (as the engine runs them). */
export function dockerProcessWords(props: Record<string, any>): string[] {
    return [...arr(props.entrypoints), ...arr(props.command)].map(str).filter((t): t is string => t !== undefined)
        .flatMap((t) => t.trim().split(/\s+/)).filter((w) => w !== "");
}

/** The container's literal environment value of `name`, if it sets one. */
function envValue(c: K8sContainer, name: string): string | undefined {
    const e = arr(c.container.env).find((x) => isRecord(x) && x.name === name);
    return isRecord(e) ? str(e.value) : undefined;
}

/** A Docker container's literal `envs` value of `name`, if it sets one. */
function dockerEnvValue(props: Record<string, any>, name: string): string | undefined {
    const e = arr(props.envs).map(str).find((x) => x?.startsWith(`${name}=`));
    return e?.slice(name.length + 1);
}

/**
 * The paths Traefik looks for its static configuration at, and whether they were named (`--configFile`) rather than searched,
 * from its command line's words, working directory and environment (session 54: a Docker container's too).
 */
function staticPaths(words: string[], workingDir: string, envValueOf: (name: string) => string | undefined): { paths: string[]; named: boolean } {
    const at = words.findIndex((w) => /^--configfile(=|$)/i.test(w));
    if (at >= 0) {
        const given = words[at].includes("=") ? words[at].slice(words[at].indexOf("=") + 1) : words[at + 1];
        if (given !== undefined && given !== "") return { paths: [posix.resolve(workingDir, given)], named: true };
    }
    const home = envValueOf("HOME");
    const dirs = ["/etc/traefik", envValueOf("XDG_CONFIG_HOME"), ...(home !== undefined ? [`${home}/.config`] : ["/root/.config", "/.config"]), workingDir];
    return { paths: [...new Set(dirs.filter((d): d is string => d !== undefined).flatMap((d) => NAMES.map((n) => posix.resolve(d, n))))], named: false };
}

/**
 * The static configuration files of the stack's Traefik containers: those a declared ConfigMap or Secret gives (one entry
 * per object), and those the pack cannot read (a file named by `--configFile` that no declared object gives, one searched
 * for that comes from a volume the pack cannot read, or an object the stack does not declare). A value unknown during
 * preview is left to `up`. Session 54: a Docker container running Traefik (`isTraefikDockerContainer`) reads its file from an
 * `uploads` entry (`content`, `contentBase64`) at the same paths; the container is then the file's source. A named file
 * not uploaded (a bind mount, the image's) or uploaded from a host `source` is one the pack cannot read.
 */
export function traefikStaticFiles(resources: StackResource[]): { files: TraefikStaticFile[]; unseen: UnseenStaticFile[] } {
    const files = new Map<StackResource, Record<string, string>>();
    const unseen: UnseenStaticFile[] = [];
    for (const r of resources.filter((x) => isK8sWorkload(x.type))) {
        const w = workloadOf("kubernetes", r.type, r.name, r.props);
        for (const c of w.containers.filter(isTraefikContainer)) {
            const { paths, named } = staticPaths(k8sCommandLine(c).flatMap((e) => e.text.trim().split(/\s+/)), str(c.container.workingDir) ?? "/", (n) => envValue(c, n));
            const missing: string[] = [];
            for (const path of paths) {
                const file = workloadFile(w, c, path, resources);
                if ("text" in file && file.source) files.set(file.source, { ...files.get(file.source), [posix.basename(path)]: file.text });
                else if ("unseen" in file && (named || !file.unseen.endsWith("of the image, which the pack cannot read"))) missing.push(file.unseen);
            }
            if (missing.length) unseen.push({ urn: r.urn, who: `${describe(r.type, r.name)} container "${c.name}"`, unseen: missing[0] });
        }
    }
    for (const r of resources.filter((x) => x.type === DOCKER_CONTAINER && isTraefikDockerContainer(x.props))) {
        const w = workloadOf("docker", r.type, r.name, r.props);
        const { paths, named } = staticPaths(dockerProcessWords(r.props), str(r.props.workingDir) ?? "/", (n) => dockerEnvValue(r.props, n));
        const missing: string[] = [];
        for (const path of paths) {
            const file = workloadFile(w, undefined, path, resources);
            if ("text" in file) files.set(r, { ...files.get(r), [posix.basename(path)]: file.text });
            else if ("unseen" in file && (named || !file.unseen.endsWith("of the image, which the pack cannot read"))) missing.push(file.unseen);
        }
        if (missing.length) unseen.push({ urn: r.urn, who: describe(r.type, r.name), unseen: missing[0] });
    }
    return { files: [...files].map(([source, data]) => ({ source, view: { ...source.props, data } })), unseen };
}
