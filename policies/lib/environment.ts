/**
 * A workload's environment as the pack can read it, on both targets: the literal entries of a Docker
 * container's `envs` ("NAME=value") or of each Kubernetes container's `env`, and, on Kubernetes, the
 * ConfigMaps and Secrets a container takes whole with `envFrom`. One reader for every policy that
 * judges settings or credentials (no-default-credentials, no-insecure-runtime-flags, servers-require-authentication,
 * credentials-from-secret-refs), so they agree on what an entry is, on which containers of which pod
 * template are read (init containers, a CronJob's job template) and on when an environment cannot be
 * read in full.
 */
import { splitEnv } from "./credentials";
import { arr, decodeBase64, isRecord, isUnknown, str } from "./values";
import { DOCKER_CONTAINER, isK8sWorkload, K8S, K8sContainer, namespaceOf, objectName, podContainers, podTemplate } from "./workloads";

export interface EnvEntry {
    /** Index in the container's `env` (Kubernetes) or in `envs` (Docker). */
    index: number;
    name: string;
    /** The literal value; undefined when set by reference, unknown during preview, or not set. */
    value?: string;
    /** `literal` (value given), `reference` (valueFrom), `unknown` (a value not known during preview), `none` (neither). */
    source: "literal" | "reference" | "unknown" | "none";
    /**
     * The entry's own `value` field, whatever its type: `empty` (missing, null or ""), `unknown` (computed,
     * not known during preview) or `given` (anything else). Unlike `source`, an unknown `valueFrom` does
     * not make it unknown, and a value that is not a string still counts as given: a credential written
     * into the spec is one whatever its type.
     */
    literal: "empty" | "unknown" | "given";
    /** Kubernetes: the entry's `valueFrom` as written (which ConfigMap or Secret key the value comes from), when it is an object. */
    valueFrom?: Record<string, any>;
}

/** A ConfigMap or Secret a container takes as its environment (`envFrom`). */
export interface EnvFromSource {
    kind: "ConfigMap" | "Secret";
    /** undefined: the name is not known during preview. */
    name?: string;
    prefix: string;
    optional: boolean;
}

export interface ContainerEnv {
    /** Kubernetes: the container (init containers too); undefined for a Docker container. */
    container?: K8sContainer;
    entries: EnvEntry[];
    /** Every entry's name is known: the list itself and each entry are neither unknown nor malformed. */
    namesKnown: boolean;
    /** `envFrom` sources; one whose kind cannot be read (unknown during preview) is a Secret with no name. */
    envFrom: EnvFromSource[];
}

function dockerEnv(props: Record<string, any>): ContainerEnv {
    const entries: EnvEntry[] = [];
    let namesKnown = !isUnknown(props.envs);
    arr(props.envs).forEach((e, index) => {
        const kv = str(e) !== undefined ? splitEnv(e as string) : undefined;
        if (kv) entries.push({ index, name: kv[0], value: kv[1], source: "literal", literal: kv[1] === "" ? "empty" : "given" });
        if (str(e) === undefined) namesKnown = false;
    });
    return { entries, namesKnown, envFrom: [] };
}

function envFromSources(container: Record<string, any>): EnvFromSource[] {
    if (isUnknown(container.envFrom)) return [{ kind: "Secret", prefix: "", optional: false }];
    return arr(container.envFrom).map((f): EnvFromSource => {
        const prefix = isRecord(f) ? str(f.prefix) ?? "" : "";
        const ref = isRecord(f) ? (isRecord(f.configMapRef) ? ["ConfigMap", f.configMapRef] as const : isRecord(f.secretRef) ? ["Secret", f.secretRef] as const : undefined) : undefined;
        if (!ref) return { kind: "Secret", prefix, optional: false };
        return { kind: ref[0], name: str(ref[1].name), prefix, optional: ref[1].optional === true };
    });
}

function kubernetesEnv(c: K8sContainer): ContainerEnv {
    const entries: EnvEntry[] = [];
    let namesKnown = !isUnknown(c.container.env);
    arr(c.container.env).forEach((e, index) => {
        const name = isRecord(e) ? str(e.name) : undefined;
        if (!isRecord(e) || name === undefined) {
            namesKnown = false;
            return;
        }
        const value = str(e.value);
        const source = value !== undefined ? "literal"
            : isUnknown(e.value) || isUnknown(e.valueFrom) ? "unknown"
                : isRecord(e.valueFrom) ? "reference" : "none";
        const literal = isUnknown(e.value) ? "unknown" : e.value === undefined || e.value === null || e.value === "" ? "empty" : "given";
        entries.push({ index, name, value, source, literal, valueFrom: isRecord(e.valueFrom) ? e.valueFrom : undefined });
    });
    return { container: c, entries, namesKnown, envFrom: envFromSources(c.container) };
}

/**
 * The environment of each container of a workload (a Docker container: one, without `container`;
 * a Kubernetes pod template: each container and init container); [] for any other resource.
 */
export function workloadEnv(type: string, props: Record<string, any>): ContainerEnv[] {
    if (type === DOCKER_CONTAINER) return [dockerEnv(props)];
    if (!isK8sWorkload(type)) return [];
    const tmpl = podTemplate(type, props);
    return (tmpl ? podContainers(tmpl.spec) : []).map(kubernetesEnv);
}

/** The text of `key` in a ConfigMap's or Secret's `field` (a Secret's `data` base64-decoded), or undefined (absent, unknown, not text). */
function sourceValue(type: string, props: Record<string, any>, field: string, key: string): string | undefined {
    const v = isRecord(props[field]) ? str(props[field][key]) : undefined;
    return v !== undefined && type === K8S.secret && field === "data" ? decodeBase64(v) : v;
}

/**
 * The entries of a ConfigMap or Secret as a pod that takes it with `envFrom` sees them: `data` and
 * `stringData` (a Secret's `data` base64-decoded; a value that does not decode is undefined),
 * each with the field it came from. Keys that are not environment variable names are left out.
 * A value unknown during preview is undefined.
 */
export function environmentSourceEntries(type: string, props: Record<string, any>): Array<{ field: string; name: string; value?: string }> {
    const out: Array<{ field: string; name: string; value?: string }> = [];
    for (const field of ["data", "stringData"]) {
        if (!isRecord(props[field])) continue;
        for (const k of Object.keys(props[field])) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
            out.push({ field, name: k, value: sourceValue(type, props, field, k) });
        }
    }
    return out;
}

/** The stack's ConfigMap or Secret an `envFrom` source (or a volume) names, in the workload's namespace. */
export function findEnvironmentSource<R extends { type: string; name: string; props: Record<string, any> }>(
    resources: readonly R[], kind: "ConfigMap" | "Secret", name: string, namespace: string,
): R | undefined {
    const type = kind === "ConfigMap" ? K8S.configMap : K8S.secret;
    return resources.find((r) => r.type === type && namespaceOf(r.props) === namespace && objectName(r.props, r.name) === name);
}

/**
 * Where a container's env entry takes its value from the stack: the ConfigMap or Secret key its
 * `valueFrom` names (`configMapKeyRef`, `secretKeyRef`), when the stack declares that object in the
 * workload's namespace, with the value (`stringData` before `data`, a Secret's `data` base64-decoded;
 * undefined when unknown during preview or absent). Undefined for any other entry.
 */
export function referencedValue<R extends { type: string; name: string; props: Record<string, any> }>(
    resources: readonly R[], valueFrom: Record<string, any> | undefined, namespace: string,
): { from: string; value?: string } | undefined {
    const ref = isRecord(valueFrom?.configMapKeyRef) ? ["ConfigMap", valueFrom.configMapKeyRef] as const
        : isRecord(valueFrom?.secretKeyRef) ? ["Secret", valueFrom.secretKeyRef] as const : undefined;
    const name = ref ? str(ref[1].name) : undefined;
    const key = ref ? str(ref[1].key) : undefined;
    if (!ref || name === undefined || key === undefined) return undefined;
    const source = findEnvironmentSource(resources, ref[0], name, namespace);
    if (!source) return undefined;
    const value = sourceValue(source.type, source.props, "stringData", key) ?? sourceValue(source.type, source.props, "data", key);
    return { from: `${ref[0]} "${name}" key ${key}`, value };
}
